import { test, Page } from "@playwright/test";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, expect } from "./helpers";

const require = createRequire(__filename);
// axe-core is injected as an inline script, which the page's Content-Security-Policy forbids
// (as it should): the browser is told to let this test's own script in.
test.use({ bypassCSP: true });
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

  // With a period and a second analyte on its own axis (the chart's controls and legend).
  await page.getByTestId("compare-with").selectOption("haemoglobin");
  await expect(page).toHaveURL(/with=haemoglobin/);
  await page.getByTestId("period-5y").click();
  await expect(page).toHaveURL(/period=5y/);
  await expect(page.getByTestId("chart").locator("g.bv-right-axis")).toHaveCount(1);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "analyte-overlay-en");
});

test("a document page with its results, S/I/R grid and PDF copy has no serious violation", async ({ page }) => {
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await waitForHydration(page);
  await page.getByTestId("document-filter").fill("amoxicilline");
  await page.locator("table.data tbody tr a").first().click();
  await expect(page.getByTestId("sir-grid").first()).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, "document-microbiology-fr");
});

test.describe("access pages", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("sign-in, break-the-glass, the access log and administration have no serious violation", async ({ page }) => {
    await page.goto(url("/connexion"));
    await waitForHydration(page);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "sign-in-fr");

    for (const [login, password] of [["patient", "demo-patient-2026"], ["admin", "demo-admin-2026"], ["medecin", "demo-medecin-2026"]]) {
      await page.goto(url("/connexion"));
      await page.getByLabel("Identifiant").fill(login);
      await page.getByLabel("Mot de passe").fill(password);
      await page.getByRole("button", { name: "Se connecter" }).click();
      await expect(page.getByTestId("user-menu")).toBeVisible();
      if (login === "patient") {
        await page.getByTestId("access-log-link").click();
        await expect(page.getByRole("heading", { level: 1 })).toHaveText("Qui a consulté mon dossier");
        expect(await seriousViolations(page)).toEqual([]);
      } else if (login === "admin") {
        await page.goto(url("/admin"));
        await expect(page.getByTestId("relationships")).toBeVisible();
        await page.getByText("Nouveau compte").click();
        expect(await seriousViolations(page)).toEqual([]);
        await screenshot(page, "admin-fr");
      } else {
        await page.getByText("Accès en urgence (bris de glace)").click();
        expect(await seriousViolations(page)).toEqual([]);
        await screenshot(page, "patients-gp-fr");
      }
      await page.getByTestId("sign-out").click();
      await expect(page).toHaveURL(/signed_out=1/);
    }
  });
});
