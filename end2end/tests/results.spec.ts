import { test } from "@playwright/test";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

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
  await page.getByTestId("units-conventional").click();
  await expect(glucose.locator("td.unit")).toHaveText("g/L");
  // The laboratory's mass value, shown with a decimal comma in French.
  await expect(glucose.locator("td.result").filter({ hasText: "0,88" }).first()).toBeVisible();

  // A converted value tells where it comes from, to the mouse and to the keyboard.
  const converted = glucose.locator("td.result.converted").first();
  await expect(converted).toHaveAttribute("title", /Valeur d'origine/);
  await converted.focus();
  await expect(converted).toBeFocused();

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
