import { Page, expect } from "@playwright/test";

/** Absolute URL of a page of the server started by global-setup.ts. */
export function url(path: string): string {
  const base = process.env.BIOVIEWER_URL;
  if (!base) throw new Error("BIOVIEWER_URL is not set: global-setup.ts did not run");
  return base + path;
}

/** Waits until the wasm bundle has hydrated the page (the language switch then reacts). */
export async function waitForHydration(page: Page): Promise<void> {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true", { timeout: 20_000 });
}

/** Fails the test on any script error (a bundle that does not hydrate shows up here). */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return errors;
}

export { expect };
