import { test, Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, collectPageErrors, expect, tableSettled } from "./helpers";

// The clinician's whole path through the viewer, once in each language: find the patient, read
// the cumulative table, filter it, open an analyte's chart, see where a converted value came
// from, open the source report, export. Every label checked is the one of that language.
const WORDS = {
  fr: {
    results: "Résultats cumulés",
    search: "glycemie",
    searchMatches: /glyc/i,
    glucose: "Glycémie à jeun",
    original: /Valeur d'origine : [\d,]+ mmol\/L/,
    report: "compte rendu du",
    trend: "Évolution",
    how: "par la masse molaire",
    narrative: "Le compte rendu tel que rédigé par le laboratoire",
    attachments: "Pièces jointes",
  },
  en: {
    results: "Cumulative results",
    search: "glucose",
    searchMatches: /glucose/i,
    glucose: "Fasting glucose",
    original: /Original value: [\d.]+ mmol\/L/,
    report: "report of",
    trend: "Trend",
    how: "through the molar mass",
    narrative: "The report as the laboratory wrote it",
    attachments: "Attachments",
  },
} as const;

async function screenshot(page: Page, name: string) {
  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}

for (const lang of ["fr", "en"] as const) {
  test(`a clinician's path in ${lang}: search, table, filter, chart, original value, document, export`, async ({ page, context, request }) => {
    const w = WORDS[lang];
    const errors = collectPageErrors(page);
    // The language a user chose earlier comes back with its cookie.
    await context.addCookies([{ name: "bioviewer_lang", value: lang, url: url("/") }]);

    // Search by INS.
    await page.goto(url("/"));
    await expect(page.locator("html")).toHaveAttribute("lang", lang);
    await waitForHydration(page);
    await page.getByTestId("patient-search").fill("279 035 121 518 989");
    const patient = page.getByTestId("patient-row").filter({ hasText: "PAT-TROIS" });
    await expect(patient).toBeVisible();
    await expect(page.getByTestId("patient-row").filter({ visible: true })).toHaveCount(1);
    await patient.getByRole("link").click();

    // The cumulative table.
    await page.getByTestId("results-link").click();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText(w.results);
    const table = page.getByTestId("cumulative-table");
    await expect(table).toBeVisible();
    await waitForHydration(page);
    await screenshot(page, `journey-results-${lang}`);

    // Filter by name: only matching analytes stay.
    await page.getByTestId("analyte-search").fill(w.search);
    await expect(page).toHaveURL(/q=/);
    await tableSettled(page);
    const names = table.locator("tbody th.sticky-col");
    await expect(names.filter({ hasText: w.glucose })).toHaveCount(1);
    for (const name of await names.allTextContents()) expect(name).toMatch(w.searchMatches);

    // In mass units, a value the laboratory gave in mmol/L is converted: on hover it tells where
    // it came from, the laboratory's own value and unit, and the report.
    await page.getByTestId("units-conventional").click();
    await expect(table.locator("tr", { has: page.locator("th", { hasText: w.glucose }) }).locator("td.unit")).toHaveText("g/L");
    const glucose = table.locator("tr", { has: page.locator("th", { hasText: w.glucose }) });
    const converted = glucose.locator("td.result.converted").first();
    await converted.hover();
    const origin = converted.getByTestId("origin-tip");
    await expect(origin).toBeVisible();
    await expect(origin).toContainText(w.original);
    await expect(origin).toContainText(w.report);
    // Really on screen, not clipped by the table's scrolling box: the page shows the tip at its
    // centre, and the tip fits in the window.
    const box = (await origin.boundingBox())!;
    const viewport = page.viewportSize()!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
    const onTop = await page.evaluate(([x, y]) => document.elementFromPoint(x, y)?.closest("[data-testid=origin-tip]") !== null,
      [box.x + box.width / 2, box.y + box.height / 2]);
    expect(onTop).toBe(true);
    mkdirSync("screenshots", { recursive: true });
    await page.screenshot({ path: `screenshots/journey-original-value-${lang}.png` });

    // The analyte's chart, in the unit system of the table: axis in the display unit, every point
    // reachable.
    await glucose.getByRole("link", { name: w.glucose }).click();
    await expect(page.getByRole("heading", { level: 1 })).toContainText(w.glucose);
    const [, patientId, analyte] = new URL(page.url()).pathname.match(/^\/patients\/([^/]+)\/analytes\/([^/?]+)/)!;
    await expect(page.getByRole("heading", { level: 2, name: w.trend })).toBeVisible();
    const chart = page.getByTestId("chart");
    await expect(chart.locator("svg")).toBeVisible();
    await expect(chart.locator("svg")).toContainText("g/L");
    await expect(chart.locator("g.bv-point").first().locator("title")).toContainText("g/L");
    // Under it, every source says how it was converted, in this language, and links its report.
    const points = page.getByTestId("points-table");
    await expect(points.locator("td.sources").filter({ hasText: w.how }).first()).toBeVisible();
    await waitForHydration(page);
    await screenshot(page, `journey-analyte-${lang}`);

    // The source report, as the laboratory wrote it.
    await points.getByTestId("source-document").first().click();
    await expect(page.getByRole("heading", { level: 2, name: w.narrative })).toBeVisible();
    await expect(page.getByTestId("narrative")).toContainText(/glyc[ée]mie|glucose/i);
    await screenshot(page, `journey-document-${lang}`);

    // Back to the table, and its exports.
    await page.goBack();
    await page.goBack();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText(w.results);
    const history = await (await request.get(url(`/api/patients/${patientId}/history`))).json();
    const series = history.series.find((s: { analyte: string }) => s.analyte === analyte);
    // The plain RFC 4180 form, one row per result, named by the test's English name.
    const csv = await request.get(url((await page.getByTestId("export-csv").getAttribute("href"))! + "&format=rfc4180&lang=en"));
    expect(csv.ok()).toBe(true);
    const lines = (await csv.text()).trim().split("\n");
    expect(lines[0]).toContain("date,test,chapter");
    expect(lines.some((l) => l.includes(`,${series.name_en},`))).toBe(true);
    // The FHIR Bundle carries the same results under the laboratories' LOINC codes (on the
    // Observation, or with the original value of a converted one).
    const loinc: string[] = series.loinc_seen;
    const fhir = await request.get(url((await page.getByTestId("export-fhir").getAttribute("href"))!));
    const bundle = await fhir.json();
    expect(bundle.resourceType).toBe("Bundle");
    type Coding = { code: string };
    type Entry = { resource: { code?: { coding?: Coding[] }; extension?: { extension?: { valueCoding?: Coding }[] }[] } };
    const codes = bundle.entry.flatMap((e: Entry) => [
      ...(e.resource.code?.coding ?? []).map((c) => c.code),
      ...(e.resource.extension ?? []).flatMap((x) => (x.extension ?? []).flatMap((y) => (y.valueCoding ? [y.valueCoding.code] : []))),
    ]);
    expect(codes.some((c: string) => loinc.includes(c))).toBe(true);
    expect(errors).toEqual([]);
  });
}
