import { test, Page, Locator } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

// The trend chart as a clinician decides from it, on a desktop and on a phone: legend outside
// the plot, calendar date ticks in the reader's language, values at the analyte's precision,
// time presets that filter the chart and the table together and survive a reload, and a second
// analyte on its own axis. The GP's patients (generated demo data, two years of results):
// BERNARD has chronic kidney disease (creatinine, eGFR computed), PETIT takes an anticoagulant
// (INR).
test.use({ storageState: { cookies: [], origins: [] } });

const FR_MONTHS = /^(janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.)/;
const EN_MONTHS = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b/;

async function signIn(page: Page, lang: "fr" | "en"): Promise<void> {
  await page.goto(url("/"));
  await page.getByLabel("Identifiant").fill("medecin");
  await page.getByLabel("Mot de passe").fill("demo-medecin-2026");
  await page.getByRole("button", { name: "Se connecter" }).click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
  await page.context().addCookies([{ name: "bioviewer_lang", value: lang, url: url("/") }]);
}

/** Opens a patient's analyte page (the patient found by name in the list); returns its path. */
async function openAnalyte(page: Page, patient: RegExp, analyte: string, query = ""): Promise<string> {
  await page.goto(url("/"));
  const href = await page.getByRole("link", { name: patient }).first().getAttribute("href");
  const path = `${href}/analytes/${analyte}`;
  await page.goto(url(path + query));
  await waitForHydration(page);
  return path;
}

/** The chart once it is drawn at the width the page measured (the first one is the server's). */
async function settledChart(page: Page): Promise<Locator> {
  const svg = page.getByTestId("chart").locator("svg");
  await expect(svg).toBeVisible();
  await expect
    .poll(() =>
      svg.evaluate((s: SVGSVGElement) => {
        const frame = s.closest(".chart-frame") as HTMLElement | null;
        // Detached: a newer chart replaced it.
        if (!frame) return false;
        const wanted = Math.min(1600, Math.max(320, Math.floor(frame.clientWidth / 40) * 40));
        return s.viewBox.baseVal.width === wanted;
      }),
    )
    .toBe(true);
  return svg;
}

async function screenshot(page: Page, name: string) {
  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}

async function box(l: Locator) {
  const b = await l.boundingBox();
  if (!b) throw new Error("not rendered");
  return b;
}

/** What a reader can check on any chart: legend under the plot, every point inside it, date
 * labels inside the picture and apart, text large enough to read. */
async function expectReadable(svg: Locator, months: RegExp) {
  const plot = await box(svg.locator("rect.bv-plot"));
  const legend = await box(svg.locator("g.bv-legend"));
  expect(legend.y).toBeGreaterThanOrEqual(plot.y + plot.height);
  for (const mark of await svg.locator("g.bv-point").all()) {
    // Its shape (the first child is its <title>).
    const b = await box(mark.locator(":scope > :nth-child(2)"));
    expect(b.y + b.height / 2).toBeLessThanOrEqual(plot.y + plot.height + 1);
    expect(b.y + b.height / 2).toBeGreaterThanOrEqual(plot.y - 1);
  }
  const picture = await box(svg);
  const ticks = svg.locator("text.bv-xtick");
  expect(await ticks.count()).toBeGreaterThanOrEqual(2);
  let previousRight = -Infinity;
  for (const tick of await ticks.all()) {
    const b = await box(tick);
    expect(b.x).toBeGreaterThanOrEqual(picture.x - 0.5);
    expect(b.x + b.width).toBeLessThanOrEqual(picture.x + picture.width + 0.5);
    expect(b.x).toBeGreaterThan(previousRight);
    previousRight = b.x + b.width;
    // Rendered at 11 px or more, whatever the screen.
    expect(await tick.evaluate((t) => parseFloat(getComputedStyle(t).fontSize) * (t.getScreenCTM()?.a ?? 0))).toBeGreaterThanOrEqual(11);
  }
  const labels = await ticks.allTextContents();
  expect(labels.some((l) => months.test(l) || /^\d{4}$/.test(l)), labels.join(" | ")).toBe(true);
}

for (const lang of ["fr", "en"] as const) {
  test(`the INR chart in ${lang} at 1400 px: legend outside, calendar ticks, one decimal`, async ({ page }) => {
    const errors = collectPageErrors(page);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await signIn(page, lang);
    await openAnalyte(page, /PETIT/, "inr");
    const svg = await settledChart(page);
    await expectReadable(svg, lang === "fr" ? FR_MONTHS : EN_MONTHS);
    // INR has one decimal: its axis never says 2,000 or 2.000.
    const values = await svg.locator("text.bv-ytick").allTextContents();
    for (const v of values) expect(v).toMatch(lang === "fr" ? /^\d+(,\d)?$/ : /^\d+(\.\d)?$/);
    // The picture fills the width it is given.
    const figure = await box(page.getByTestId("chart"));
    expect((await box(svg)).width).toBeGreaterThan(figure.width - 2);
    await screenshot(page, `chart-inr-${lang}`);
    expect(errors).toEqual([]);
  });
}

test("an analyte page does not ask again for the chart it was rendered with; another period does", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await signIn(page, "fr");
  const charts: string[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/sfn/load_chart")) charts.push(r.postData() ?? "");
  });
  // A first analyte page: drawn by the server at a default width, then once at the width the
  // page measures (the browser remembers it for the next pages).
  await openAnalyte(page, /PETIT/, "inr");
  await settledChart(page);
  expect(charts.length).toBeLessThanOrEqual(1);
  // The next pages are drawn by the server at that width: nothing to ask once hydrated.
  for (const [patient, analyte] of [[/PETIT/, "inr"], [/BERNARD/, "creatinine"]] as const) {
    charts.length = 0;
    await openAnalyte(page, patient, analyte);
    await settledChart(page);
    await page.waitForLoadState("networkidle");
    expect(charts, `${analyte}: the chart rendered with the page is not fetched again`).toEqual([]);
  }
  // Another period is another chart: asked once.
  await page.getByTestId("period-1y").click();
  await expect(page).toHaveURL(/period=1y/);
  await expect.poll(() => charts.length).toBe(1);
  expect(charts[0]).toContain("period=OneYear");
  await settledChart(page);
  await page.waitForLoadState("networkidle");
  expect(charts.length).toBe(1);
  expect(errors).toEqual([]);
});

test("time presets filter the chart and the table together, stay in the URL and survive reload and Back", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await signIn(page, "fr");
  await openAnalyte(page, /PETIT/, "inr");
  await settledChart(page);
  const marks = page.getByTestId("chart").locator("g.bv-point");
  const rows = page.getByTestId("points-table").locator("tbody tr");
  const all = await marks.count();
  await expect(page.getByTestId("period-all")).toHaveAttribute("aria-current", "page");
  // Presets count back from the latest result, and the page says from which.
  const latestShown = (await rows.first().locator("td").first().textContent())!.slice(0, 10);
  await expect(page.getByTestId("period-hint")).toHaveText(`(jusqu'au dernier résultat, ${latestShown})`);
  // The table's dates (dd/mm/yyyy) as yyyymmdd numbers; the rows of the year up to the latest.
  const days = async () =>
    (await rows.locator("td:first-child").allTextContents()).map((t) => {
      const [d, m, y] = t.slice(0, 10).split("/").map(Number);
      return y * 10000 + m * 100 + d;
    });
  const everyDay = await days();
  const latest = Math.max(...everyDay);
  const inYear = everyDay.filter((d) => d >= latest - 10000).length;
  expect(inYear).toBeLessThan(everyDay.length);

  await page.getByTestId("period-1y").click();
  await expect(page).toHaveURL(/\?period=1y$/);
  await expect.poll(() => marks.count()).toBeLessThan(all);
  const year = await marks.count();
  expect(year).toBeGreaterThan(2);
  await expect(rows).toHaveCount(inYear);
  expect(Math.min(...(await days()))).toBeGreaterThanOrEqual(latest - 10000);
  await expect(page.getByTestId("period-1y")).toHaveAttribute("aria-current", "page");

  await page.getByTestId("period-1m").click();
  await expect(page).toHaveURL(/\?period=1m$/);
  await expect.poll(() => marks.count()).toBeLessThan(year);
  await expect.poll(() => rows.count()).toBeLessThan(inYear);

  await page.goBack();
  await expect(page).toHaveURL(/\?period=1y$/);
  await expect.poll(() => marks.count()).toBe(year);
  await expect(rows).toHaveCount(inYear);

  await page.reload();
  await waitForHydration(page);
  await settledChart(page);
  await expect(marks).toHaveCount(year);
  await expect(rows).toHaveCount(inYear);
  await expect(page.getByTestId("period-1y")).toHaveAttribute("aria-current", "page");
  expect(errors).toEqual([]);
});

test("creatinine with eGFR: the second analyte on its own right axis, in the URL", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await signIn(page, "en");
  await openAnalyte(page, /BERNARD/, "creatinine");
  let svg = await settledChart(page);
  await expect(svg.locator("g.bv-right-axis")).toHaveCount(0);
  const own = await svg.locator("g.bv-point").count();
  const table = page.getByTestId("points-table").locator("tbody tr");
  const ownRows = await table.count();

  await page.getByTestId("overlay-suggestion").click();
  await expect(page).toHaveURL(/with=egfr_/);
  svg = await settledChart(page);
  await expect(svg.locator("g.bv-right-axis")).toHaveCount(1);
  await expect(svg.locator("text.bv-axis-title-right")).toContainText("eGFR");
  await expect(svg.locator("text.bv-axis-title-right")).toContainText("mL/min");
  await expect(svg.locator("g.bv-legend-overlay")).toContainText("right axis");
  const second = svg.locator("g.bv-point.bv-overlay");
  expect(await second.count()).toBeGreaterThan(2);
  await expect(second.first()).toHaveAttribute("aria-label", /^eGFR/);
  // The creatinine points and the table are unchanged.
  await expect(svg.locator("g.bv-point:not(.bv-overlay)")).toHaveCount(own);
  await expect(table).toHaveCount(ownRows);
  // Focus reaches the second analyte's points and reads them out.
  await second.last().focus();
  await expect(page.getByTestId("chart-readout")).toHaveText((await second.last().getAttribute("aria-label"))!);
  await expectReadable(svg, EN_MONTHS);
  await screenshot(page, "chart-egfr-creatinine");

  // With a preset the overlay stays; a reload keeps both.
  await page.getByTestId("period-1y").click();
  await expect(page).toHaveURL(/period=1y/);
  await expect(page).toHaveURL(/with=egfr_/);
  await page.reload();
  await waitForHydration(page);
  svg = await settledChart(page);
  await expect(svg.locator("g.bv-right-axis")).toHaveCount(1);

  // Any other analyte of the patient, from the list; then none.
  await page.getByTestId("compare-with").selectOption("urea");
  await expect(page).toHaveURL(/with=urea/);
  await expect(page.getByTestId("chart").locator("text.bv-axis-title-right")).toContainText("Urea");
  await page.getByTestId("overlay-remove").click();
  await expect(page).not.toHaveURL(/with=/);
  await expect(page.getByTestId("chart").locator("g.bv-right-axis")).toHaveCount(0);
  expect(errors).toEqual([]);
});

test.describe("on a phone", () => {
  test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

  test("the chart fits 390 px with fewer ticks, readable text, and points that answer a touch", async ({ page }) => {
    const errors = collectPageErrors(page);
    await signIn(page, "fr");
    await openAnalyte(page, /PETIT/, "inr", "?with=haemoglobin");
    const svg = await settledChart(page);
    expect(await svg.evaluate((s: SVGSVGElement) => s.viewBox.baseVal.width)).toBeLessThanOrEqual(390);
    expect((await box(svg)).width).toBeLessThanOrEqual(390);
    await expect(svg.locator("g.bv-right-axis")).toHaveCount(1);
    await expectReadable(svg, FR_MONTHS);
    expect(await svg.locator("text.bv-xtick").count()).toBeLessThanOrEqual(6);
    const mark = svg.locator("g.bv-point").last();
    await mark.tap();
    await expect(page.getByTestId("chart-readout")).toHaveText((await mark.getAttribute("aria-label"))!);
    // Nothing widens the page (a phone would zoom it all out, chart included).
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await svg.scrollIntoViewIfNeeded();
    mkdirSync("screenshots", { recursive: true });
    await page.screenshot({ path: "screenshots/chart-phone.png" });
    expect(errors).toEqual([]);
  });
});
