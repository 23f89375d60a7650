// Starts Bioviewer for the browser tests: a free port, a fresh data folder, the shared corpus
// imported through the real `bioviewer import` command, and waits for /healthz.
import { spawn, execFileSync, ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForHealth(url: string, server: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`bioviewer exited early with code ${server.exitCode}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`bioviewer did not answer on ${url} within ${timeoutMs} ms`);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const repo = resolve(__dirname, "..");
  const binary = process.env.BIOVIEWER_BIN ?? join(repo, "target", "debug", "bioviewer");
  const siteRoot = process.env.BIOVIEWER_SITE_ROOT ?? join(repo, "target", "site");
  const corpus = process.env.BIOVIEWER_CORPUS ?? join(repo, "..", "shared", "corpus", "ans-cr-bio");
  for (const [what, path] of [["server binary", binary], ["site", join(siteRoot, "pkg")], ["corpus", corpus]]) {
    if (!existsSync(path)) throw new Error(`${what} not found at ${path}: run the tests through 'make test'`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "bioviewer-e2e-"));
  const env = { ...process.env, BIOVIEWER_DATA_DIR: dataDir, BIOVIEWER_LOG: "warn" };
  execFileSync(binary, ["import", corpus], { env, stdio: ["ignore", "ignore", "inherit"] });

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(binary, ["serve", "--listen", `127.0.0.1:${port}`, "--site-root", siteRoot], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitForHealth(url, server, 30_000);
  process.env.BIOVIEWER_URL = url;

  return async () => {
    server.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    if (server.exitCode === null) server.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
}
