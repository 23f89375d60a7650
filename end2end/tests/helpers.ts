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

/** Waits until the cumulative table shows the view in the URL: a filter or another page of
 * columns fetches its slice from the server, the table says `aria-busy` meanwhile. */
export async function tableSettled(page: Page): Promise<void> {
  await expect(page.locator(".table-scroll[aria-busy]")).toHaveCount(0);
}

export { expect };
