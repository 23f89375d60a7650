import { test, Page } from "@playwright/test";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, expect } from "./helpers";

const require = createRequire(__filename);
const axePath = require.resolve("axe-core/axe.min.js");

/** Serious and critical axe-core violations of the page, as "rule: target" lines. */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: axePath });
  const violations = await page.evaluate(async () => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v: { impact: string }) => v.impact === "serious" || v.impact === "critical")
      .flatMap((v: { id: string; nodes: { target: string[] }[] }) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")}`));
  });
  return violations;
}

async function screenshot(page: Page, name: string) {
  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}

test("the main views have no serious or critical accessibility violation, in both languages", async ({ page }) => {
  await page.goto(url("/"));
  await waitForHydration(page);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "patients-fr");

  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await expect(page.getByRole("heading", { level: 2 })).toHaveText("Documents");
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "documents-fr");

  await page.getByTestId("summary-link").click();
  await expect(page.getByTestId("summary-table")).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "summary-fr");

  await page.goBack();
  await page.getByTestId("results-link").click();
  await expect(page.getByTestId("cumulative-table")).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "results-fr");

  await page.getByRole("link", { name: "Urée" }).click();
  await expect(page.getByTestId("chart").locator("svg")).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "analyte-fr");

  await waitForHydration(page);
  await page.getByTestId("lang-en").click();
  await expect(page.locator("html")).toHaveAttribute("lang", "en");
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "analyte-en");
});
