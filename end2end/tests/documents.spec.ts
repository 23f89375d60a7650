import { test, Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

// Results that are not numbers, microbiology and the documents themselves (issue 15): a positive
// rapid test and a detected HPV are in the summary's block of abnormal results; a microbiology
// report shows each organism with its S/I/R grid; a document lists its own results and shows its
// PDF copy; the documents list says what each report contains and its filter finds test names.
const WORDS = {
  fr: {
    positive: "positif",
    discordance: "discordance : le texte du compte rendu dit",
    pointOfCare: "test rapide hors laboratoire",
    organism: "Germe identifié",
    results: "Résultats de ce compte rendu",
    prescriber: "Prescripteur",
    pdf: "Copie PDF du compte rendu",
    resistant: "résistant",
    details: "Détails techniques",
    kind: "Type",
  },
  en: {
    positive: "positive",
    discordance: "discrepancy: the report's text says",
    pointOfCare: "point-of-care rapid test",
    organism: "Organism identified",
    results: "Results of this report",
    prescriber: "Prescriber",
    pdf: "PDF copy of the report",
    resistant: "resistant",
    details: "Technical details",
    kind: "Type",
  },
} as const;

async function screenshots(page: Page, name: string) {
  mkdirSync("screenshots", { recursive: true });
  for (const width of [1400, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `screenshots/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1400, height: 900 });
}

async function openPatient(page: Page) {
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await expect(page.getByTestId("document-filter")).toBeVisible();
}

for (const lang of ["fr", "en"] as const) {
  test.describe(lang, () => {
    test.beforeEach(async ({ context }) => {
      await context.addCookies([{ name: "bioviewer_lang", value: lang, url: url("/") }]);
    });

    test(`the summary's abnormal block shows the positive influenza B and the detected HPV (${lang})`, async ({ page }) => {
      const w = WORDS[lang];
      const errors = collectPageErrors(page);
      await openPatient(page);
      await page.getByTestId("summary-link").click();
      const block = page.getByTestId("qualitative-abnormal");
      await expect(block).toBeVisible();
      const flu = block.getByTestId("qualitative-row").filter({ hasText: /Grippe B/ });
      await expect(flu).toHaveCount(1);
      await expect(flu).toContainText(w.positive);
      // The agency's example codes it "negative" and prints "positif": both are said.
      await expect(flu.getByTestId("discordant")).toContainText(`${w.discordance} « positif »`);
      await expect(flu.getByTestId("point-of-care")).toHaveText(w.pointOfCare);
      // The agency's cervical screening examples (several laboratories): HPV detected, and the
      // cytology's adenocarcinoma, each flagged.
      const hpv = block.getByTestId("qualitative-row").filter({ hasText: "ADN d'HPV-HR détecté" });
      await expect(hpv.first()).toContainText(w.positive);
      await expect(block.getByTestId("qualitative-row").filter({ hasText: "adénocarcinome" }).first()).toBeVisible();
      await screenshots(page, `summary-qualitative-${lang}`);
      // The row leads to the rapid test itself, marked as such, not as a rejected document.
      await flu.getByRole("link").click();
      await expect(page.getByTestId("point-of-care")).toHaveText(w.pointOfCare);
      await expect(page.getByTestId("document-state")).toHaveCount(0);
      const fluLine = page.getByTestId("report-result").filter({ hasText: /Grippe B/ });
      await expect(fluLine).toContainText(w.positive);
      expect(errors).toEqual([]);
    });

    test(`a microbiology report shows each organism with its S/I/R grid and the MIC (${lang})`, async ({ page }) => {
      const w = WORDS[lang];
      const errors = collectPageErrors(page);
      await openPatient(page);
      await waitForHydration(page);
      // The filter finds a test name, not only titles and laboratories.
      await page.getByTestId("document-filter").fill("amoxicilline");
      const rows = page.locator("table.data tbody tr");
      await expect(rows.first()).toBeVisible();
      const count = await rows.count();
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(31);
      // Each says what it contains (its chapters and first tests: a long report's other tests
      // are found by the filter though not listed), and that something is abnormal.
      const antibiogram = rows.filter({ has: page.getByTestId("document-contents").filter({ hasText: /Amoxicilline/i }) }).first();
      await expect(antibiogram).toBeVisible();
      await expect(antibiogram.getByTestId("document-abnormal")).toBeVisible();
      // Technical columns wait in a details view.
      await expect(page.getByRole("columnheader", { name: w.kind, exact: true })).toHaveCount(0);
      await antibiogram.getByTestId("document-details").locator("summary").click();
      await expect(antibiogram.getByTestId("document-details")).toContainText(w.kind);
      // Only current reports have contents: the older versions are not found by a test name.
      await antibiogram.getByRole("link").first().click();

      const isolates = page.getByTestId("isolate");
      await expect(isolates).toHaveCount(2);
      await expect(isolates.first()).toContainText(w.organism);
      await expect(isolates.first().getByTestId("organism")).toContainText(/coli/i);
      const grid = isolates.first().getByTestId("sir-grid");
      const amoxicillin = grid.getByTestId("sir-row").filter({ hasText: "Amoxicilline" });
      await expect(amoxicillin.locator("td[data-sir=R]")).toHaveCount(1);
      await expect(amoxicillin.locator("td[data-sir=R]")).toContainText(w.resistant);
      await expect(amoxicillin.getByTestId("mic")).toContainText(lang === "fr" ? "≥ 0,512" : "≥ 0.512");
      await expect(grid.getByTestId("sir-row").filter({ hasText: "Ampicilline" }).locator("td[data-sir=I]")).toHaveCount(1);
      await expect(grid.getByTestId("sir-row").filter({ hasText: "Gentamicine" }).locator("td[data-sir=S]")).toHaveCount(1);
      await expect(isolates.nth(1).getByTestId("organism")).toContainText(/Streptococcus/i);
      await screenshots(page, `microbiology-${lang}`);
      expect(errors).toEqual([]);
    });

    test(`a document lists its own results, its prescriber and dates, and shows its PDF copy (${lang})`, async ({ page, request }) => {
      const w = WORDS[lang];
      const errors = collectPageErrors(page);
      await openPatient(page);
      await waitForHydration(page);
      await page.getByTestId("document-filter").fill("SORTES");
      await expect(page.locator("table.data tbody tr")).toHaveCount(1);
      await expect(page.getByTestId("document-contents")).toContainText("TSH");
      await page.locator("table.data tbody tr a").first().click();
      const results = page.getByTestId("report-results");
      await expect(results).toContainText(w.results);
      await expect(results.getByTestId("report-result").first()).toBeVisible();
      await expect(page.getByTestId("document-facts")).toContainText(w.prescriber);
      await expect(page.getByTestId("sampled-at")).toHaveText(/\d/);
      await expect(page.getByTestId("validated")).toHaveText(/\d/);
      // The PDF copy in the page, from our own origin, and no empty "copy" section.
      const frame = page.getByTestId("pdf-copy");
      await expect(frame).toBeVisible();
      await expect(frame).toHaveAttribute("title", w.pdf);
      const src = (await frame.getAttribute("src"))!;
      expect(src).toMatch(/^\/api\/patients\/[^/]+\/documents\/[^/]+\/attachments\/\d+$/);
      const pdf = await request.get(url(src));
      expect(pdf.headers()["content-type"]).toBe("application/pdf");
      expect(pdf.headers()["x-frame-options"]).toBe("SAMEORIGIN");
      await expect(page.getByTestId("narrative").locator("h3", { hasText: /^Copie/ })).toHaveCount(0);
      await screenshots(page, `document-${lang}`);
      expect(errors).toEqual([]);
    });
  });
}
