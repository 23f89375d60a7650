import { test } from "@playwright/test";
import { url, waitForHydration, collectPageErrors, expect, tableSettled } from "./helpers";

test("the cumulative table groups laboratories, converts units on request and shows originals", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("results-link").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Résultats cumulés");
  const table = page.getByTestId("cumulative-table");
  await expect(table).toBeVisible();
  await waitForHydration(page);

  // One TSH row for both laboratories' codes.
  const tsh = table.locator("tr", { has: page.locator("th", { hasText: /^TSH$/ }) });
  await expect(tsh).toHaveCount(1);

  // Search ignores accents; the glucose row is in mmol/L, then in g/L on request.
  await page.getByTestId("analyte-search").fill("glycemie a jeun");
  const glucose = table.locator("tr", { has: page.locator("th", { hasText: "Glycémie à jeun" }) });
  await expect(glucose).toHaveCount(1);
  await expect(glucose.locator("td.unit")).toHaveText("mmol/L");
  // Two results the same day: the abnormal one is shown, never the one behind "+1"; the other is
  // in the cell's tip.
  const sameDay = glucose.locator("td.result", { has: page.locator(".more") }).first();
  await expect(sameDay).toHaveClass(/flag-high/);
  await sameDay.focus();
  await expect(sameDay.getByTestId("origin-tip")).toContainText(/Autre résultat du même jour : 4,8\d mmol\/L/);
  await page.getByTestId("units-conventional").click();
  await expect(glucose.locator("td.unit")).toHaveText("g/L");
  // The laboratory's mass value, shown with a decimal comma in French.
  await expect(glucose.locator("td.result").filter({ hasText: "0,88" }).first()).toBeVisible();

  // A converted value tells where it comes from, to the mouse and to the keyboard.
  const converted = glucose.locator("td.result.converted").first();
  const origin = converted.getByTestId("origin-tip");
  await expect(origin).toBeHidden();
  await converted.focus();
  await expect(converted).toBeFocused();
  await expect(origin).toBeVisible();
  await expect(origin).toContainText(/Valeur d'origine : [\d,]+ mmol\/L/);
  await expect(origin).toContainText("compte rendu du");
  await converted.blur();
  await expect(origin).toBeHidden();
  // Arrow keys move from value to value along the row, skipping days without one.
  const cells = glucose.locator("td.result");
  expect(await cells.count()).toBeGreaterThan(1);
  await cells.first().focus();
  await page.keyboard.press("ArrowRight");
  await expect(cells.nth(1)).toBeFocused();
  await page.keyboard.press("ArrowLeft");
  await expect(cells.first()).toBeFocused();

  // Nothing is hidden: antibiograms and other codes outside the catalogue are listed, and the
  // data-quality panel counts them and the documents that could not be used.
  await page.getByTestId("analyte-search").fill("");
  // The table fetches the slice of the new view: every row again.
  await expect(tsh).toHaveCount(1);
  // Down goes to the same day's next value below, over chapter headings.
  const top = table.locator("tbody td.result").first();
  await top.focus();
  const rowOf = () => page.evaluate(() => (document.activeElement as HTMLTableCellElement | null)?.closest("tr")?.rowIndex ?? -1);
  const before = await rowOf();
  await page.keyboard.press("ArrowDown");
  await expect(page.locator("td.result:focus")).toHaveCount(1);
  expect(await rowOf()).toBeGreaterThan(before);
  await expect(page.getByTestId("other-results").locator("tbody tr").first()).toBeVisible();
  await expect(page.getByTestId("quality-replaced")).not.toHaveText("0");
  // Filtering on one laboratory keeps only its results.
  await page.getByTestId("lab-filter").selectOption("Laboratoire des SORTES");
  await expect(tsh.locator("td.result")).toHaveCount(1);
  await page.getByTestId("lab-filter").selectOption("");
  // One chapter: only its heading and its analytes.
  await page.getByTestId("chapter-filter").selectOption({ label: "Hématologie" });
  await expect(table.locator("tr.chapter-row")).toHaveCount(1);
  await expect(table.locator("tr.chapter-row")).toHaveText("Hématologie");
  await expect(table.locator("th", { hasText: "Hémoglobine" })).toBeVisible();
  await expect(table.locator("th", { hasText: "Glycémie à jeun" })).toHaveCount(0);
  await page.getByTestId("chapter-filter").selectOption("");
  // Abnormal only: every row left has a flagged value.
  await page.getByTestId("abnormal-only").check();
  await expect(page).toHaveURL(/abnormal=1/);
  await tableSettled(page);
  const flaggedRows = table.locator("tbody tr:not(.chapter-row)");
  expect(await flaggedRows.count()).toBeGreaterThan(0);
  for (const row of await flaggedRows.all()) {
    await expect(row.locator("td.flag-high, td.flag-low, td.flag-abnormal").first()).toBeAttached();
  }
  await page.getByTestId("abnormal-only").uncheck();
  // A date range: only the days inside it are columns.
  await page.getByTestId("date-from").fill("2021-01-01");
  await page.getByTestId("date-from").dispatchEvent("change");
  await page.getByTestId("date-to").fill("2021-12-31");
  await page.getByTestId("date-to").dispatchEvent("change");
  await expect(page).toHaveURL(/to=2021-12-31/);
  await tableSettled(page);
  for (const day of await table.locator("th.day .date").allTextContents()) expect(day).toMatch(/\/2021$/);
  await page.getByTestId("date-from").fill("");
  await page.getByTestId("date-from").dispatchEvent("change");
  await page.getByTestId("date-to").fill("");
  await page.getByTestId("date-to").dispatchEvent("change");

  // Since the last visit: only columns after the chosen date are marked new.
  await page.getByTestId("since").fill("2023-06-01");
  await page.getByTestId("since").dispatchEvent("change");
  await expect(table.locator("th.day.new")).toHaveCount(1);
  await expect(table.locator("th.day.new")).toContainText("04/01/2024");

  // English everywhere after the switch.
  await page.getByTestId("lang-en").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Cumulative results");
  await expect(table.locator("th", { hasText: "Fasting glucose" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("the history API serves the normalised JSON", async ({ request, page }) => {
  await page.goto(url("/"));
  const href = await page.getByRole("link", { name: /PAT-TROIS/ }).getAttribute("href");
  const response = await request.get(url(`/api${href}/history`));
  expect(response.ok()).toBe(true);
  const history = await response.json();
  expect(history.patient.ins).toBe("279035121518989");
  const tsh = history.series.find((s: { analyte: string }) => s.analyte === "tsh");
  expect(tsh.loinc_seen).toEqual(["29575-8", "3016-3"]);
});

test("an analyte's trend chart shows every value by hover and focus, and zooms", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("results-link").click();
  await page.getByRole("link", { name: "Urée" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Urée");
  const chart = page.getByTestId("chart");
  await expect(chart.locator("svg")).toBeVisible();
  await waitForHydration(page);
  const marks = chart.locator("g.bv-point");
  const all = await marks.count();
  expect(all).toBeGreaterThan(2);
  // Every mark carries its exact value and unit, for the mouse (title) and the keyboard.
  await expect(marks.first().locator("title")).toContainText("mmol/L");
  await marks.first().focus();
  await expect(marks.first()).toBeFocused();
  // Focused, its value is written under the chart too (a chart's tooltip shows to a mouse only).
  const readout = page.getByTestId("chart-readout");
  await expect(readout).toHaveText((await marks.first().getAttribute("aria-label"))!);
  await expect(readout).toContainText("mmol/L");
  // The table under the chart lists every result with its sources.
  await expect(page.getByTestId("points-table").locator("tbody tr")).toHaveCount(all);
  // Zoom to the last years: fewer marks.
  await page.getByTestId("zoom-from").fill("2023-01-01");
  await page.getByTestId("zoom-from").dispatchEvent("change");
  await expect.poll(async () => await marks.count()).toBeLessThan(all);
  expect(errors).toEqual([]);
});

test("the summary puts abnormal and significantly changed values first", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("summary-link").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Synthèse");
  const rows = page.getByTestId("summary-row");
  await expect(rows.first()).toBeVisible();
  expect(await rows.count()).toBeGreaterThan(10);
  // Rows needing attention come first, and none comes after a row that does not.
  const classes = await rows.evaluateAll((trs) => trs.map((tr) => tr.className));
  const firstCalm = classes.findIndex((c) => !c.includes("attention"));
  expect(classes[0]).toContain("attention");
  expect(classes.slice(firstCalm).every((c) => !c.includes("attention"))).toBe(true);
  await waitForHydration(page);
  // Small multiples: the renal panel first, then the blood count on request.
  await expect(page.getByTestId("sparkline").filter({ hasText: "Urée" })).toBeVisible();
  await page.getByTestId("panel-3").click();
  await expect(page.getByTestId("sparkline").filter({ hasText: "Hémoglobine" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("a document shows the laboratory's own narrative safely and opens its PDF", async ({ page, request }) => {
  const errors = collectPageErrors(page);
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  // The filter runs in the browser: wait for the bundle before typing.
  await waitForHydration(page);
  await page.getByTestId("document-filter").fill("SORTES");
  await expect(page.locator("table.data tbody tr")).toHaveCount(1);
  await page.locator("table.data tbody tr a").first().click();
  await expect(page.getByTestId("narrative").locator("table").first()).toBeVisible();
  await expect(page.getByTestId("narrative")).toContainText("Thyréostimuline");
  await expect(page.getByTestId("narrative").locator("script")).toHaveCount(0);
  const pdf = page.getByTestId("attachments").getByRole("link").first();
  const href = await pdf.getAttribute("href");
  const response = await request.get(url(href!));
  expect(response.headers()["content-type"]).toBe("application/pdf");
  expect((await response.body()).subarray(0, 4).toString()).toBe("%PDF");
  // And saved as a file on request.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("attachment-download").first().click()]);
  expect(download.suggestedFilename()).toMatch(/\.pdf$/);

  // The exports linked from the table answer in their formats.
  await page.getByRole("link", { name: /Documents du patient/ }).click();
  await page.getByTestId("results-link").click();
  const csv = await request.get(url((await page.getByTestId("export-csv").getAttribute("href"))!));
  expect(csv.headers()["content-type"]).toContain("text/csv");
  // In French: the form a French spreadsheet opens (BOM, semicolons), named after the patient.
  const text = await csv.text();
  expect(text.charCodeAt(0)).toBe(0xfeff);
  expect(text.split("\n")[0]).toContain("date;analyse;chapitre");
  expect(csv.headers()["content-disposition"]).toMatch(/^attachment; filename="bioviewer-PAT-TROIS-.*\.csv"/);
  const fhir = await request.get(url((await page.getByTestId("export-fhir").getAttribute("href"))!));
  expect(fhir.headers()["content-type"]).toContain("application/fhir+json");
  expect(fhir.headers()["content-disposition"]).toMatch(/^attachment; filename="bioviewer-PAT-TROIS-.*\.fhir\.json"/);
  expect((await fhir.json()).resourceType).toBe("Bundle");
  expect(errors).toEqual([]);
});

test("the cumulative table prints as an A4 landscape report with the patient, the period and page numbers", async ({ page }) => {
  await page.goto(url("/"));
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("results-link").click();
  await expect(page.getByTestId("cumulative-table")).toBeVisible();
  await waitForHydration(page);
  await page.emulateMedia({ media: "print" });
  const header = page.locator(".print-header");
  await expect(header).toBeVisible();
  await expect(header).toContainText("PAT-TROIS");
  await expect(header).toContainText("Période");
  await expect(header).toContainText(/\d{2}\/\d{2}\/\d{4} – \d{2}\/\d{2}\/\d{4}/);
  // The screen's controls are not printed.
  await expect(page.locator(".filters")).toBeHidden();
  await expect(page.getByTestId("user-menu")).toBeHidden();
  await page.screenshot({ path: "screenshots/results-print.png", fullPage: true });
  // The browser's own print engine: A4 landscape pages (842 × 595 points).
  const pdf = (await page.pdf({ preferCSSPageSize: true, displayHeaderFooter: false })).toString("latin1");
  const boxes = [...pdf.matchAll(/\/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]/g)].map((m) => [Number(m[1]), Number(m[2])]);
  expect(boxes.length).toBeGreaterThan(0);
  for (const [w, h] of boxes) {
    expect(Math.round(w)).toBe(842);
    expect(Math.round(h)).toBe(595);
  }
});

test.describe("on a touch screen", () => {
  test.use({ hasTouch: true, isMobile: true, viewport: { width: 900, height: 800 } });

  test("touching a point of the chart shows its exact value", async ({ page }) => {
    const errors = collectPageErrors(page);
    await page.goto(url("/"));
    await page.getByRole("link", { name: /PAT-TROIS/ }).click();
    await page.getByTestId("results-link").click();
    await page.getByRole("link", { name: "Urée" }).click();
    const marks = page.getByTestId("chart").locator("g.bv-point");
    await expect(marks.first()).toBeVisible();
    await waitForHydration(page);
    const last = marks.last();
    await last.tap();
    await expect(page.getByTestId("chart-readout")).toHaveText((await last.getAttribute("aria-label"))!);
    expect(errors).toEqual([]);
  });
});
