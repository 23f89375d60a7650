import { defineConfig } from "@playwright/test";
import { join } from "node:path";

// Browser tests run against a real `bioviewer serve` started by global-setup.ts on a free port,
// with a throw-away database filled from the shared corpus. Chromium is Debian's: no browser is
// downloaded (this machine reaches no browser CDN).
export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    headless: true,
    // Signed in as the demo hospital clinician (global-setup.ts); access.spec.ts signs in itself.
    storageState: join(__dirname, ".auth", "hopital.json"),
    locale: "fr-FR",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
});
