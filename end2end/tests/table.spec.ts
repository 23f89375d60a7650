import { Locator, Page, test } from "@playwright/test";
import { url, waitForHydration, collectPageErrors, expect, tableSettled } from "./helpers";

// The cumulative table and the summary as a clinician decides from them: the reference range of
// every row, a legend, filters kept in the URL, exports of what is on screen, one tab stop, a
// print view of the whole period; the summary's cards with their flag, date and previous value.

type Point = { time?: string; flag?: { code: string }; laboratory?: string; status: string };
type Series = { analyte: string; name_fr: string; name_en: string; points: Point[] };

async function patientHref(page: Page, name: RegExp): Promise<string> {
  await page.goto(url("/"));
  return (await page.getByRole("link", { name }).first().getAttribute("href"))!;
}

async function history(page: Page, href: string): Promise<{ series: Series[] }> {
  const response = await page.request.get(url(`/api${href}/history`));
  expect(response.ok()).toBe(true);
  return response.json();
}

/** Signs in as the GP (her patient PETIT, on a vitamin K antagonist, has a result every few weeks). */
async function asGp(page: Page): Promise<void> {
  await page.goto(url("/"));
  await page.getByLabel("Identifiant").fill("medecin");
  await page.getByLabel("Mot de passe").fill("demo-medecin-2026");
  await page.getByRole("button", { name: "Se connecter" }).click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
}

const abnormal = (p: Point) => !!p.flag && !["N", "NEG", "S"].includes(p.flag.code);

/** The first day of a period counted back by calendar months from `latest` (YYYY-MM-DD). */
function backFrom(latest: string, months: number): string {
  const [y, m, d] = latest.split("-").map(Number);
  const index = y * 12 + (m - 1) - months;
  const year = Math.floor(index / 12);
  const month = (index % 12) + 1;
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(Math.min(d, last)).padStart(2, "0")}`;
}

for (const lang of ["fr", "en"] as const) {
  test(`every row shows its reference range, every value its range in the tip, and the legend says every symbol (${lang})`, async ({ page }) => {
    const errors = collectPageErrors(page);
    const href = await patientHref(page, /PAT-TROIS/);
    await page.goto(url(`${href}/results`));
    await waitForHydration(page);
    if (lang === "en") await page.getByTestId("lang-en").click();
    const table = page.getByTestId("cumulative-table");
    await expect(table.locator("thead th.range-col")).toHaveText(lang === "fr" ? "Valeurs de référence" : "Reference range");
    // A value's tip gives the laboratory's range in the unit shown.
    const cell = table.locator("td.result").first();
    await cell.focus();
    await expect(cell.getByTestId("origin-tip")).toContainText(lang === "fr" ? "Valeurs de référence :" : "Reference range:");
    // Rows with ranges show one; where the laboratories differ it says so and lists them.
    const ranges = table.getByTestId("row-range");
    const written = (await ranges.allTextContents()).filter((t) => t.trim() !== "");
    expect(written.length).toBeGreaterThan(3);
    expect(written.some((t) => /\d+([.,]\d+)? – \d+/.test(t) || /^[<>] \d/.test(t))).toBe(true);
    const varies = table.locator("td.range.varies");
    if ((await varies.count()) > 0) {
      await expect(varies.first()).toContainText(lang === "fr" ? "variable selon le laboratoire" : "varies by lab");
      await varies.first().focus();
      await expect(varies.first().getByTestId("range-tip")).toBeVisible();
      await expect(varies.first().getByTestId("range-tip")).toContainText(/Laboratoire|LABO|Labo|SORTES/i);
    }
    const legend = page.getByTestId("legend");
    await expect(legend).toBeVisible();
    for (const symbol of ["↑", "↓", "▲", "▼", "*", "+n"]) await expect(legend).toContainText(symbol);
    await expect(legend).toContainText(lang === "fr" ? "hausse significative" : "significant rise");
    await expect(legend).toContainText(lang === "fr" ? "calculé par Bioviewer" : "computed by Bioviewer");
    expect(errors).toEqual([]);
  });
}

test("filters, period, page and units live in the URL, survive Back and a unit switch, and the exports follow them", async ({ page }) => {
  const errors = collectPageErrors(page);
  const href = await patientHref(page, /PAT-TROIS/);
  await page.goto(url(`${href}/results`));
  await waitForHydration(page);
  const table = page.getByTestId("cumulative-table");
  await page.getByTestId("lab-filter").selectOption("Laboratoire des SORTES");
  await expect(page).toHaveURL(/lab=Laboratoire%20des%20SORTES/);
  await page.getByTestId("period-5y").click();
  await expect(page).toHaveURL(/period=5y/);
  await page.getByTestId("abnormal-only").check();
  await expect(page).toHaveURL(/abnormal=1/);
  await tableSettled(page);
  const rows = await table.locator("tbody tr:not(.chapter-row)").count();

  // The exports hold what is on screen: that laboratory, that period, abnormal rows only.
  const csvHref = (await page.getByTestId("export-csv").getAttribute("href"))!;
  expect(csvHref).toMatch(/lab=Laboratoire%20des%20SORTES/);
  expect(csvHref).toMatch(/period=5y/);
  expect(csvHref).toMatch(/abnormal=1/);
  expect((await page.getByTestId("export-fhir").getAttribute("href"))!).toMatch(/lab=Laboratoire%20des%20SORTES/);
  const filtered = (await (await page.request.get(url(csvHref + "&format=rfc4180&lang=en"))).text()).trim().split("\n");
  const whole = (await (await page.request.get(url(`/api${href}/history.csv?units=si&format=rfc4180&lang=en`))).text()).trim().split("\n");
  expect(filtered.length).toBeGreaterThan(1);
  expect(filtered.length).toBeLessThan(whole.length);
  for (const line of filtered.slice(1)) expect(line).toContain("Laboratoire des SORTES");

  // To an analyte and Back: the same view.
  await table.locator("tbody th.sticky-col a").first().click();
  await expect(page.getByRole("heading", { level: 1 })).not.toHaveText("Résultats cumulés");
  await page.goBack();
  await expect(page.getByTestId("lab-filter")).toHaveValue("Laboratoire des SORTES");
  await expect(page.getByTestId("abnormal-only")).toBeChecked();
  await expect(page.getByTestId("period-5y")).toHaveAttribute("aria-current", "page");
  await expect(table.locator("tbody tr:not(.chapter-row)")).toHaveCount(rows);

  // A unit switch keeps every filter.
  await page.getByTestId("units-conventional").click();
  await expect(page).toHaveURL(/units=conventional/);
  await expect(page).toHaveURL(/lab=Laboratoire%20des%20SORTES/);
  await expect(page.getByTestId("abnormal-only")).toBeChecked();
  await expect(page.getByTestId("units-conventional")).toHaveAttribute("aria-current", "true");
  expect((await page.getByTestId("export-csv").getAttribute("href"))!).toMatch(/units=conventional.*lab=/);
  // A reload too.
  await page.reload();
  await expect(page.getByTestId("lab-filter")).toHaveValue("Laboratoire des SORTES");
  await expect(page.getByTestId("abnormal-only")).toBeChecked();
  expect(errors).toEqual([]);
});

test("the analyte page has a skip link past the chart's points", async ({ page }) => {
  const href = await patientHref(page, /PAT-TROIS/);
  await page.goto(url(`${href}/results`));
  await page.getByRole("link", { name: "Urée" }).click();
  await expect(page.getByTestId("chart").locator("svg")).toBeVisible();
  await waitForHydration(page);
  const skip = page.getByTestId("skip-chart");
  await skip.focus();
  await expect(skip).toBeVisible();
  await page.keyboard.press("Enter");
  await expect(page.locator("#points-heading")).toBeFocused();
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => !!document.activeElement?.closest("figure.chart"))).toBe(false);
});

test.describe("a patient with a result every few weeks", () => {
  test.use({ storageState: { cookies: [], origins: [] } });
  test.beforeEach(async ({ page }) => asGp(page));

  test("'abnormal only' keeps the analytes abnormal in the period shown", async ({ page }) => {
    const errors = collectPageErrors(page);
    const expectedOf = (data: { series: Series[] }) => (from: string | null) =>
      data.series
        .filter((s) => s.points.some((p) => p.time && (!from || p.time.slice(0, 10) >= from) && abnormal(p)))
        .map((s) => s.name_fr)
        .sort();
    // The GP's patient whose abnormal tests differ between the whole record and its later part.
    let found: { href: string; expected: (from: string | null) => string[]; from: string; days: string[] } | undefined;
    for (const name of [/PETIT/, /BERNARD/, /MARTIN/]) {
      const href = await patientHref(page, name);
      const data = await history(page, href);
      const days = [...new Set(data.series.flatMap((s) => s.points.map((p) => p.time?.slice(0, 10)).filter((d): d is string => !!d)))].sort();
      const expected = expectedOf(data);
      const from = days.find((d) => expected(d).length < expected(null).length);
      if (from) {
        found = { href, expected, from, days };
        break;
      }
    }
    expect(found).toBeDefined();
    const { href, expected, from, days } = found!;
    const latest = days.at(-1)!;
    const rowsShown = async () =>
      (await page.getByTestId("cumulative-table").locator("tbody tr:not(.chapter-row) th.sticky-col").allTextContents()).sort();

    await page.goto(url(`${href}/results?abnormal=1`));
    await expect(page.getByTestId("abnormal-only")).toBeChecked();
    expect(await rowsShown()).toEqual(expected(null));
    // A shorter period: analytes abnormal once, long ago, are gone. A preset when one shows it,
    // else the first date from which the abnormal rows differ.
    const period = ([["1m", 1], ["6m", 6], ["1y", 12]] as const).find(([, months]) => expected(backFrom(latest, months)).length < expected(null).length);
    if (period) {
      const [code, months] = period;
      await page.getByTestId(`period-${code}`).click();
      await expect(page).toHaveURL(new RegExp(`period=${code}`));
      await expect.poll(rowsShown).toEqual(expected(backFrom(latest, months)));
    } else {
      await waitForHydration(page);
      await page.getByTestId("date-from").fill(from);
      await page.getByTestId("date-from").dispatchEvent("change");
      await expect(page).toHaveURL(new RegExp(`from=${from}`));
      await expect.poll(rowsShown).toEqual(expected(from));
    }
    expect(errors).toEqual([]);
  });

  test("the pages of columns are in the URL and Back returns to the page left", async ({ page }) => {
    const href = await patientHref(page, /PETIT/);
    await page.goto(url(`${href}/results`));
    await waitForHydration(page);
    const first = await page.locator("th.day .date").first().textContent();
    await page.getByTestId("older").click();
    await expect(page).toHaveURL(/page=1/);
    await expect(page.getByTestId("page-count")).toHaveText(/^2 \//);
    const second = await page.locator("th.day .date").first().textContent();
    expect(second).not.toBe(first);
    await page.locator("tbody th.sticky-col a").first().click();
    await page.goBack();
    await expect(page.getByTestId("page-count")).toHaveText(/^2 \//);
    await expect(page.locator("th.day .date").first()).toHaveText(second!);
  });

  test("the results page sends the columns it shows; an older page fetches the older values in place", async ({ page }) => {
    const errors = collectPageErrors(page);
    const href = await patientHref(page, /PETIT/);
    const data = await history(page, href);
    // The page as the server sends it (this session's cookie): twelve columns and what the
    // controls need, not the whole history (issue 13: the ten-year INR patient's page weighed
    // 551 KB). The bound leaves room for the twelve columns' cells and their tips in both
    // languages' markup, whatever the length of the record (docs/benchmarks.md).
    const html = await (await page.request.get(url(`${href}/results`))).text();
    expect(html.length).toBeLessThan(120_000);
    // The whole record is not in it: the oldest day's results are not sent with the newest page.
    const days = [...new Set(data.series.flatMap((s) => s.points.map((p) => p.time?.slice(0, 10)).filter((d): d is string => !!d)))]
      .sort()
      .reverse();
    expect(days.length).toBeGreaterThan(12);
    expect(html).not.toContain(`"${days.at(-1)}`);

    await page.goto(url(`${href}/results`));
    await waitForHydration(page);
    const inr = page.getByTestId("cumulative-table").locator("tbody tr", { has: page.locator('th a[href*="/analytes/inr"]') });
    await expect(inr).toHaveCount(1);
    // The value a cell shows (its own text, without its tip and marks).
    const shown = (cell: Locator) =>
      cell.evaluate((td) => Array.from(td.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join("").trim());
    const expectPage = async (page_: number) => {
      const pageDays = days.slice(page_ * 12, page_ * 12 + 12);
      const cells = inr.locator("td.result, td.empty");
      await expect(cells).toHaveCount(pageDays.length);
      const inrSeries = data.series.find((s) => s.analyte === "inr")!;
      let checked = 0;
      for (const [i, day] of pageDays.entries()) {
        const points = inrSeries.points.filter((p) => p.time?.slice(0, 10) === day) as (Point & { display?: string })[];
        if (points.length === 1 && points[0].display) {
          expect(await shown(cells.nth(i))).toBe(points[0].display.replace(".", ","));
          checked++;
        } else if (points.length === 0) {
          await expect(cells.nth(i)).toHaveClass(/empty/);
        }
      }
      expect(checked).toBeGreaterThan(0);
    };
    await expectPage(0);
    // Older: the next slice through the server function, no page load; the URL keeps the page.
    const documents: string[] = [];
    const slices: string[] = [];
    page.on("request", (r) => {
      if (r.resourceType() === "document") documents.push(r.url());
      if (r.url().includes("/sfn/load_table")) slices.push(r.url());
    });
    await page.getByTestId("older").click();
    await expect(page).toHaveURL(/page=1/);
    await expect(page.getByTestId("page-count")).toHaveText(/^2 \//);
    await expectPage(1);
    expect(slices.length).toBe(1);
    expect(documents).toEqual([]);
    // Reload and Back keep the page left.
    await page.reload();
    await waitForHydration(page);
    await expectPage(1);
    await page.getByTestId("newer").click();
    await expect(page.getByTestId("page-count")).toHaveText(/^1 \//);
    await expectPage(0);
    await page.goBack();
    await expect(page.getByTestId("page-count")).toHaveText(/^2 \//);
    await expectPage(1);
    expect(errors).toEqual([]);
  });

  test("the table is one tab stop; arrows, Home, End, Page Up and Page Down move inside", async ({ page }) => {
    const errors = collectPageErrors(page);
    const href = await patientHref(page, /PETIT/);
    await page.goto(url(`${href}/results`));
    await waitForHydration(page);
    const body = page.getByTestId("cumulative-table").locator("tbody");
    await expect(body.locator('[tabindex="0"]')).toHaveCount(1);
    // Tab from the control before the table lands in it once, the next Tab leaves it.
    await page.getByTestId("older").focus();
    await page.keyboard.press("Tab");
    const inTable = () => page.evaluate(() => !!document.activeElement?.closest("table.cumulative tbody"));
    expect(await inTable()).toBe(true);
    await page.keyboard.press("Tab");
    expect(await inTable()).toBe(false);
    await page.keyboard.press("Shift+Tab");
    expect(await inTable()).toBe(true);

    const position = () =>
      page.evaluate(() => {
        const cell = document.activeElement!.closest("td, th") as HTMLTableCellElement;
        return { row: (cell.parentElement as HTMLTableRowElement).rowIndex, column: cell.cellIndex };
      });
    const start = await position();
    await page.keyboard.press("End");
    const end = await position();
    expect(end.row).toBe(start.row);
    expect(end.column).toBeGreaterThan(start.column);
    await page.keyboard.press("Home");
    expect((await position()).column).toBeLessThanOrEqual(start.column);
    await page.keyboard.press("ArrowRight");
    const right = await position();
    await page.keyboard.press("PageDown");
    const down = await position();
    expect(down.column).toBe(right.column);
    // Ten rows with a value that day further down (or the last of them), at least as far as one
    // ArrowDown goes; Page Up comes back to the top row.
    expect(down.row).toBeGreaterThan(right.row);
    await page.keyboard.press("PageUp");
    expect((await position()).row).toBe(right.row);
    await page.keyboard.press("ArrowDown");
    expect((await position()).row).toBeLessThanOrEqual(down.row);
    await page.keyboard.press("ArrowUp");
    // The cell reached is the table's tab stop now.
    await expect(body.locator('[tabindex="0"]')).toHaveCount(1);
    expect(await page.evaluate(() => document.activeElement?.getAttribute("tabindex"))).toBe("0");
    expect(errors).toEqual([]);
  });

  for (const lang of ["fr", "en"] as const) {
    test(`the print view prints every column of the period with the patient and who printed it (${lang})`, async ({ page }) => {
      const errors = collectPageErrors(page);
      const href = await patientHref(page, /PETIT/);
      const data = await history(page, href);
      const days = new Set(data.series.flatMap((s) => s.points.map((p) => p.time?.slice(0, 10)).filter((d) => !!d)));
      await page.goto(url(`${href}/results`));
      await waitForHydration(page);
      if (lang === "en") await page.getByTestId("lang-en").click();
      await page.getByTestId("print-period").click();
      await expect(page).toHaveURL(/print=1/);
      const tables = page.getByTestId("cumulative-table");
      // Every sampling day of the period, in blocks of seven columns: none left out, none clipped.
      await expect(page.locator("th.day")).toHaveCount(days.size);
      expect(days.size).toBeGreaterThan(12);
      expect(await tables.count()).toBe(Math.ceil(days.size / 7));
      const identity = page.getByTestId("print-identity");
      await expect(identity).toHaveCount(await tables.count());
      await expect(identity.first()).toContainText("PETIT");
      await expect(identity.first()).toContainText("INS");
      await expect(identity.first()).toContainText(lang === "fr" ? /Imprimé par .*DURAND/ : /Printed by .*DURAND/);
      // Printed at, in the clinician's time zone, labelled (never UTC beside Paris times).
      await expect(identity.first()).toContainText(lang === "fr" ? /\d{2}:\d{2} \(heure de Paris\)/ : /\d{2}:\d{2} \(Paris time\)/);
      await expect(identity.first()).not.toContainText("UTC");
      await expect(identity.first()).not.toContainText(lang === "fr" ? "Filtres" : "Filters");
      await expect(page.getByTestId("legend")).toBeVisible();
      await page.emulateMedia({ media: "print" });
      // A4 landscape less its margins: 273 mm, about 1030 CSS pixels.
      await page.setViewportSize({ width: 1030, height: 700 });
      // No column cut off: every block fits the printed width.
      for (const t of await tables.all()) {
        const [width, room] = await t.evaluate((el) => [el.scrollWidth, (el.parentElement as HTMLElement).clientWidth]);
        expect(width).toBeLessThanOrEqual(room + 1);
      }
      await expect(page.getByTestId("legend")).toBeVisible();
      await expect(page.locator(".print-toolbar")).toBeHidden();
      await page.screenshot({ path: `screenshots/results-print-view-${lang}.png`, fullPage: true });
      const pdf = await page.pdf({ preferCSSPageSize: true });
      const pages = (pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) ?? []).length;
      expect(pages).toBeGreaterThanOrEqual(await tables.count());
      // A filtered printout says what it leaves out: never read as the complete history.
      await page.emulateMedia({ media: "screen" });
      await page.goto(url(`${href}/results?abnormal=1&print=1`));
      await waitForHydration(page);
      if (lang === "en") await page.getByTestId("lang-en").click();
      await expect(page.getByTestId("print-identity").first()).toContainText(
        lang === "fr" ? "Filtres (résultats non imprimés) : Anormaux seulement" : "Filters (results not printed): Abnormal only",
      );
      expect(errors).toEqual([]);
    });
  }
});

for (const lang of ["fr", "en"] as const) {
  test(`summary cards show flag, date and the previous value, old results are marked, trends only when significant (${lang})`, async ({ page }) => {
    const errors = collectPageErrors(page);
    const href = await patientHref(page, /PAT-TROIS/);
    await page.goto(url(`${href}/summary`));
    await waitForHydration(page);
    if (lang === "en") await page.getByTestId("lang-en").click();
    const cards = page.getByTestId("sparkline");
    await expect(cards.first()).toBeVisible();
    await expect(cards.first().getByTestId("card-latest")).toContainText(lang === "fr" ? /\d{2}\/\d{2}\/\d{4}/ : /\d{4}-\d{2}-\d{2}/);
    await expect(page.getByTestId("card-previous").first()).toContainText(lang === "fr" ? "Précédent" : "Previous");
    // The agency's examples are years old: marked so.
    await expect(page.getByTestId("old-mark").first()).toHaveText(lang === "fr" ? "ancien (plus d'un an)" : "old (over a year)");
    // Every panel offered has results.
    for (const button of await page.locator('[data-testid^="panel-"]').all()) {
      await button.click();
      await expect(cards.first()).toBeVisible();
    }
    const notJudged = lang === "fr" ? "variation non évaluée" : "change not assessed";
    const words = lang === "fr"
      ? ["hausse significative", "baisse significative", "sans changement significatif", "première valeur", notJudged]
      : ["significant rise", "significant fall", "no significant change", "first value", notJudged];
    const trends = await page.getByTestId("summary-trend").allTextContents();
    expect(trends.length).toBeGreaterThan(5);
    for (const t of trends) expect(words.some((w) => t.toLowerCase().includes(w))).toBe(true);
    // Review finding (seventh session): a tenfold rise of urine red cells (no biological
    // variation known for them) read "no significant change"; not assessed now.
    const redCells = page.getByTestId("summary-row").filter({ hasText: lang === "fr" ? "Hématies urinaires" : "Urine red cells" });
    await expect(redCells.getByTestId("summary-trend")).toContainText(notJudged);
    await expect(page.getByTestId("summary-previous").first()).not.toBeEmpty();
    expect(errors).toEqual([]);
  });
}

test("summary and cumulative results link to each other, and each tab names the patient and the page", async ({ page }) => {
  const errors = collectPageErrors(page);
  const href = await patientHref(page, /PAT-TROIS/);
  await page.goto(url(href));
  await expect(page).toHaveTitle(/^Documents — .*PAT-TROIS.* — Bioviewer$/);
  await page.goto(url(`${href}/summary`));
  await expect(page).toHaveTitle(/^Synthèse — .*PAT-TROIS/);
  await waitForHydration(page);
  // A summary line opens its row in the cumulative table.
  const row = page.getByTestId("summary-row").first();
  const name = (await row.locator("th a").first().textContent())!.trim();
  await row.getByTestId("summary-in-table").click();
  await expect(page).toHaveTitle(/^Résultats cumulés — .*PAT-TROIS/);
  await expect(page.getByTestId("analyte-search")).toHaveValue(name);
  await expect(page.getByTestId("cumulative-table").locator("tbody th.sticky-col", { hasText: name }).first()).toBeVisible();
  await page.getByTestId("to-summary").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Synthèse");
  await page.getByTestId("to-results").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Résultats cumulés");
  await page.getByRole("link", { name: "Urée" }).click();
  await expect(page).toHaveTitle(/^Urée — .*PAT-TROIS/);
  await page.getByTestId("lang-en").click();
  await expect(page).toHaveTitle(/^Urea — .*PAT-TROIS/);
  await page.getByTestId("source-document").first().click();
  await expect(page).toHaveTitle(/^Document — .*PAT-TROIS/);
  expect(errors).toEqual([]);
});

test.describe("signed in as the patient", () => {
  test.use({ storageState: { cookies: [], origins: [] } });
  test("the access log's tab names the patient", async ({ page }) => {
    await page.goto(url("/"));
    await page.getByLabel("Identifiant").fill("patient");
    await page.getByLabel("Mot de passe").fill("demo-patient-2026");
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.getByTestId("access-log-link").click();
    await expect(page).toHaveTitle(/^Journal des accès — .*MARTIN.* — Bioviewer$/);
  });
});

for (const width of [1400, 390]) {
  for (const lang of ["fr", "en"] as const) {
    test(`screenshots of the results and the summary at ${width} px (${lang})`, async ({ page }) => {
      await page.setViewportSize({ width, height: 900 });
      const href = await patientHref(page, /ROUX/);
      await page.goto(url(`${href}/results`));
      await waitForHydration(page);
      if (lang === "en") await page.getByTestId("lang-en").click();
      await expect(page.getByTestId("legend")).toBeVisible();
      // The range column is there at every width.
      await expect(page.locator("thead th.range-col")).toBeVisible();
      if (width === 390) {
        // Values show beside the analyte, its unit and its range without scrolling sideways
        // (the pages review found the first date column cut at the phone's edge).
        const box = await page.getByTestId("result-cell").first().boundingBox();
        expect(box).not.toBeNull();
        expect(box!.x + box!.width).toBeLessThanOrEqual(390);
      }
      await page.screenshot({ path: `screenshots/table-results-${width}-${lang}.png`, fullPage: true });
      await page.goto(url(`${href}/summary`));
      await expect(page.getByTestId("sparkline").first()).toBeVisible();
      await page.screenshot({ path: `screenshots/table-summary-${width}-${lang}.png`, fullPage: true });
    });
  }
}
