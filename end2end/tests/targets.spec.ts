import { test, Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

// Treatment targets and critical values, as the GP uses them (generated demo data): PETIT takes
// a vitamin K antagonist (an INR every month, mostly in 2–3, which the laboratories flag high
// against 0.8–1.2); BERNARD has chronic kidney disease and once a potassium beyond the critical
// limit (Kost 1990: 6.2 mmol/L).
test.use({ storageState: { cookies: [], origins: [] } });

const WORDS = {
  fr: { inTarget: "dans la cible", critical: "valeur critique haute", save: "Enregistrer la cible", end: "Supprimer la cible", saved: "Cible enregistrée", lab: "Plage du laboratoire" },
  en: { inTarget: "in target", critical: "critical high value", save: "Save the target", end: "End the target", saved: "Target saved", lab: "Laboratory's range" },
};

async function signIn(page: Page, lang: "fr" | "en"): Promise<void> {
  await page.goto(url("/"));
  await page.getByLabel("Identifiant").fill("medecin");
  await page.getByLabel("Mot de passe").fill("demo-medecin-2026");
  await page.getByRole("button", { name: "Se connecter" }).click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
  await page.context().addCookies([{ name: "bioviewer_lang", value: lang, url: url("/") }]);
}

async function patientPath(page: Page, name: RegExp): Promise<string> {
  await page.goto(url("/"));
  return (await page.getByRole("link", { name }).first().getAttribute("href"))!;
}

async function shots(page: Page, name: string, fitsPhone = true) {
  mkdirSync("screenshots", { recursive: true });
  for (const width of [1400, 390]) {
    await page.setViewportSize({ width, height: 1000 });
    await page.waitForTimeout(400);
    await page.screenshot({ path: `screenshots/${name}-${width}.png`, fullPage: true });
    // The page itself never scrolls sideways (the summary's phone layout is another change's).
    if (fitsPhone) expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width + 1);
  }
  await page.setViewportSize({ width: 1400, height: 1000 });
}

for (const lang of ["fr", "en"] as const) {
  const w = WORDS[lang];
  test(`INR with a target of 2–3 (${lang}): values in target are not flagged, the band is drawn`, async ({ page }) => {
    const errors = collectPageErrors(page);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await signIn(page, lang);
    const petit = await patientPath(page, /PETIT/);
    await page.goto(url(`${petit}/analytes/inr`));
    await waitForHydration(page);
    const rows = page.getByTestId("points-table").locator("tbody tr");
    // Without a target, the laboratory's flags: most INRs are high.
    const before = await page.getByTestId("point-flag").allTextContents();
    expect(before.filter((t) => t.includes("↑")).length).toBeGreaterThan(before.length / 2);

    // The clinician sets 2–3 on the page (a plain form post), and comes back to it.
    const form = page.getByTestId("target-form");
    await form.getByTestId("target-low").fill("2");
    await form.getByTestId("target-high").fill("3");
    await page.getByRole("button", { name: w.save }).click();
    await expect(page.getByTestId("target-outcome")).toContainText(w.saved);
    await waitForHydration(page);
    await expect(page.getByTestId("target-current")).toContainText("Dr Sophie DURAND");
    // When it was set, in the clinician's time zone, labelled (review finding: it said UTC).
    await expect(page.getByTestId("target-current")).toContainText(lang === "fr" ? "(heure de Paris)" : "(Paris time)");
    await expect(page.getByTestId("target-current")).not.toContainText("UTC");

    // Values in 2–3 say "in target", with no ↑, and the laboratory's range and flag beside.
    const flags = page.getByTestId("point-flag");
    const values = await rows.locator("td:nth-child(2)").allTextContents();
    let inTarget = 0;
    for (let i = 0; i < values.length; i++) {
      const v = parseFloat(values[i].replace(",", "."));
      const flag = (await flags.nth(i).textContent())!;
      if (v >= 2 && v <= 3) {
        inTarget++;
        // Judged against the target, not high; the laboratory's judgement (high) beside it.
        const [judged, laboratory] = flag.split(w.lab);
        expect(judged).toContain(w.inTarget);
        expect(judged).not.toContain("↑");
        expect(laboratory).toContain("↑");
      } else if (v > 3) {
        expect(flag).toContain("↑");
      }
    }
    expect(inTarget).toBeGreaterThan(3);

    // The chart draws the target band and says it in its legend; each point's tip says how it is judged.
    const svg = page.getByTestId("chart").locator("svg");
    await expect(svg.locator("g.bv-target")).toHaveCount(1);
    await expect(svg.locator("g.bv-legend-target")).toContainText(lang === "fr" ? "2 – 3" : "2 – 3");
    await expect(svg.locator("g.bv-point.bv-target-judged").first()).toBeAttached();
    const labels = await svg.locator("g.bv-point").evaluateAll((marks) => marks.map((m) => m.getAttribute("aria-label") ?? ""));
    expect(labels.filter((l) => l.includes(w.inTarget)).length).toBe(inTarget);

    // The cumulative table: an INR in target is not red.
    await page.goto(url(`${petit}/results`));
    await waitForHydration(page);
    const cell = page.locator('td.result.target[aria-label*="' + w.inTarget + '"]').first();
    await expect(cell).toBeVisible();
    await expect(cell).not.toHaveClass(/flag-high/);

    // Screenshots of the analyte page with its target, then the target ended (state left clean).
    await page.goto(url(`${petit}/analytes/inr`));
    await waitForHydration(page);
    await shots(page, `target-inr-${lang}`);
    await page.getByRole("button", { name: w.end }).click();
    await expect(page.getByTestId("target-current")).not.toContainText("DURAND");
    expect(errors).toEqual([]);
  });

  test(`a critical potassium is marked critical (${lang}) in the table, the chart and the analyte page`, async ({ page }) => {
    const errors = collectPageErrors(page);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await signIn(page, lang);
    const bernard = await patientPath(page, /BERNARD/);
    await page.goto(url(`${bernard}/results`));
    await waitForHydration(page);
    const mark = page.getByTestId("critical-mark");
    await expect(mark).toHaveCount(1);
    const cell = page.locator("td.result.critical");
    await expect(cell).toHaveAttribute("aria-label", new RegExp(w.critical));
    await expect(cell).toHaveText(/‼/);

    await page.goto(url(`${bernard}/analytes/potassium`));
    await waitForHydration(page);
    await expect(page.getByTestId("points-table").locator("tr.critical")).toHaveCount(1);
    await expect(page.getByTestId("points-table").locator("tr.critical")).toContainText(w.critical);
    const point = page.getByTestId("chart").locator("svg g.bv-point.bv-critical");
    await expect(point).toHaveCount(1);
    await expect(point).toHaveAttribute("aria-label", new RegExp(w.critical));
    await point.focus();
    await expect(page.getByTestId("chart-readout")).toContainText(w.critical);
    await shots(page, `critical-potassium-${lang}`);

    await page.goto(url(`${bernard}/summary`));
    await waitForHydration(page);
    await shots(page, `summary-bernard-${lang}`, false);
    expect(errors).toEqual([]);
  });
}
