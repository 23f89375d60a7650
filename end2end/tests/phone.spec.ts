// Times in the clinician's zone, pages that fit a phone, and the patient's own pages: at 390 px
// and 1400 px, in French and English, as a GP, a patient and an administrator.
import { test, Page, BrowserContext, APIRequestContext } from "@playwright/test";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

// Each test signs in itself: no stored session.
test.use({ storageState: { cookies: [], origins: [] } });

const PASSWORDS: Record<string, string> = {
  medecin: "demo-medecin-2026",
  hopital: "demo-hopital-2026",
  patient: "demo-patient-2026",
  admin: "demo-admin-2026",
};

type Lang = "fr" | "en";

async function useLanguage(context: BrowserContext, lang: Lang): Promise<void> {
  await context.addCookies([{ name: "bioviewer_lang", value: lang, url: url("/") }]);
}

async function signIn(page: Page, login: string): Promise<void> {
  await page.goto(url("/connexion"));
  await page.locator("#login").fill(login);
  await page.locator("#password").fill(PASSWORDS[login]);
  await page.getByTestId("sign-in-form").locator("button[type=submit]").click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
}

async function signOut(page: Page): Promise<void> {
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/signed_out=1/);
}

/** The page itself never scrolls sideways: only a table's own box may. */
async function expectFitsWidth(page: Page, what: string): Promise<void> {
  await waitForHydration(page);
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  expect(scroll, `${what}: the page is ${scroll} px wide in a ${inner} px window`).toBeLessThanOrEqual(inner);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `screenshots/phone/${name}.png`, fullPage: true });
}

/** A date and time in Paris, as the interface writes it in each language. */
function parisTime(at: Date, lang: Lang): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  const date = lang === "fr" ? `${parts.day}/${parts.month}/${parts.year}` : `${parts.year}-${parts.month}-${parts.day}`;
  return `${date} ${parts.hour}:${parts.minute}`;
}

const ZONE = { fr: "(heure de Paris)", en: "(Paris time)" };

/** Every page a user of this role opens, checked to fit and photographed. */
async function visitEveryPage(page: Page, login: string, name: string, check: (what: string) => Promise<void>): Promise<void> {
  await signIn(page, login);
  if (login === "admin") {
    await page.goto(url("/admin"));
    await expect(page.getByTestId("relationships")).toBeVisible();
    await check("administration");
    await shot(page, `${name}-admin`);
    await page.goto(url("/"));
    await check("administrator's home");
    return;
  }
  if (login === "patient") {
    // A patient lands on her own summary.
    await expect(page).toHaveURL(/\/patients\/[0-9a-f-]+\/summary$/);
  } else {
    await check("patient list");
    await shot(page, `${name}-patients`);
    await page.getByTestId("patient-row").filter({ hasText: "MARTIN" }).getByRole("link").click();
    await page.getByTestId("summary-link").click();
  }
  await expect(page.getByTestId("summary-table")).toBeVisible();
  await check("summary");
  await shot(page, `${name}-summary`);
  const patientPath = new URL(page.url()).pathname.replace(/\/summary$/, "");
  const analyteHref = await page.locator("[data-testid=summary-row] a[href*='/analytes/']").first().getAttribute("href");
  await page.goto(url(patientPath));
  await expect(page.getByTestId("results-link")).toBeVisible();
  await check("documents");
  await shot(page, `${name}-documents`);
  const documentHref = await page.locator("a[href*='/documents/']").first().getAttribute("href");
  await page.goto(url(documentHref!));
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  await check("document");
  await shot(page, `${name}-document`);
  await page.goto(url(`${patientPath}/results`));
  await expect(page.getByTestId("cumulative-table")).toBeVisible();
  await check("cumulative results");
  await shot(page, `${name}-results`);
  await page.goto(url(analyteHref!));
  await expect(page.getByTestId("points-table")).toBeVisible();
  await check("analyte");
  await shot(page, `${name}-analyte`);
  if (login === "patient") {
    await page.getByTestId("access-log-link").click();
    await expect(page.getByTestId("access-log")).toBeVisible();
    await check("access log");
    await shot(page, `${name}-access-log`);
  }
}

for (const lang of ["fr", "en"] as Lang[]) {
  test.describe(`on a phone (390 px, ${lang})`, () => {
    test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

    test(`every page fits the width, for a GP, a patient and an administrator (${lang})`, async ({ page, context }) => {
      test.setTimeout(120_000);
      const errors = collectPageErrors(page);
      await useLanguage(context, lang);
      await page.goto(url("/connexion"));
      await expectFitsWidth(page, "sign-in");
      await shot(page, `390-${lang}-sign-in`);
      // The header stays compact: one brand line, then the user's links.
      for (const login of ["medecin", "patient", "admin"]) {
        await visitEveryPage(page, login, `390-${lang}-${login}`, (what) => expectFitsWidth(page, `${login}, ${what}`));
        const header = await page.locator("header.app-header").boundingBox();
        expect(header!.height, "a compact header").toBeLessThanOrEqual(100);
        await signOut(page);
      }
      expect(errors).toEqual([]);
    });

    test(`the cumulative table scrolls in its own box, the analyte's name staying in view (${lang})`, async ({ page, context }) => {
      await useLanguage(context, lang);
      await signIn(page, "medecin");
      await page.getByTestId("patient-row").filter({ hasText: "MARTIN" }).getByRole("link").click();
      await page.getByTestId("results-link").click();
      await waitForHydration(page);
      const box = page.locator(".table-scroll");
      const name = page.locator("table.cumulative tbody th.sticky-col").first();
      await expect(name).toBeVisible();
      const before = (await name.boundingBox())!;
      const scrolled = await box.evaluate((e) => {
        e.scrollLeft = 400;
        return e.scrollLeft;
      });
      expect(scrolled, "the values are wider than the phone: the table's own box scrolls").toBeGreaterThan(100);
      const after = (await name.boundingBox())!;
      expect(Math.abs(after.x - before.x), "the analyte's name does not move").toBeLessThanOrEqual(1);
      // The first value column has gone under the name column; the name is still readable.
      expect(after.x + after.width).toBeLessThanOrEqual(390 / 2);
      await expectFitsWidth(page, "scrolled cumulative table");
      await page.screenshot({ path: `screenshots/phone/390-${lang}-results-scrolled.png` });
    });
  });

  test.describe(`the summary on a phone (390 px, ${lang})`, () => {
    test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

    // Review finding (seventh session): the summary's table was cut at the phone's edge (the
    // previous value, the date, the laboratory unseen) and nothing said it scrolls; its rows'
    // names now stay in view while the rest scrolls under them.
    test(`the summary's table scrolls in its own box, each result's name staying in view (${lang})`, async ({ page, context }) => {
      await useLanguage(context, lang);
      await signIn(page, "medecin");
      await page.getByTestId("patient-row").filter({ hasText: "MARTIN" }).getByRole("link").click();
      await page.goto(page.url() + "/summary");
      await waitForHydration(page);
      const table = page.getByTestId("summary-table");
      const name = table.locator("tbody th[scope=row]").first();
      await expect(name).toBeVisible();
      const before = (await name.boundingBox())!;
      const scrolled = await table.evaluate((e) => {
        e.scrollLeft = 300;
        return e.scrollLeft;
      });
      expect(scrolled, "wider than the phone: the table's own box scrolls").toBeGreaterThan(100);
      const after = (await name.boundingBox())!;
      expect(Math.abs(after.x - before.x), "the result's name does not move").toBeLessThanOrEqual(1);
      await expect(table.getByTestId("summary-previous").first()).toBeInViewport();
      await expectFitsWidth(page, "scrolled summary");
      await page.screenshot({ path: `screenshots/phone/390-${lang}-summary-scrolled.png` });
    });
  });

  test.describe(`on a desktop (1400 px, ${lang})`, () => {
    test.use({ viewport: { width: 1400, height: 1000 } });

    test(`every page fits, for a GP, a patient and an administrator (${lang})`, async ({ page, context }) => {
      test.setTimeout(120_000);
      const errors = collectPageErrors(page);
      await useLanguage(context, lang);
      for (const login of ["medecin", "patient", "admin"]) {
        await visitEveryPage(page, login, `1400-${lang}-${login}`, (what) => expectFitsWidth(page, `${login}, ${what}`));
        await signOut(page);
      }
      expect(errors).toEqual([]);
    });
  });

  test(`a patient lands on her own summary and reads no clinician's jargon (${lang})`, async ({ page, context }) => {
    await useLanguage(context, lang);
    await signIn(page, "patient");
    await expect(page).toHaveURL(/\/patients\/[0-9a-f-]+\/summary$/);
    await expect(page.getByTestId("patient-banner")).toContainText("MARTIN");
    const patientPath = new URL(page.url()).pathname.replace(/\/summary$/, "");
    // The brand link brings her back to her summary too.
    await waitForHydration(page);
    await page.locator("a.brand").click();
    await expect(page).toHaveURL(/\/summary$/);
    const jargon = lang === "fr" ? /LOINC|Qualité des données|Molaires \(SI\)|Conventionnelles|Code :/ : /LOINC|Data quality|Molar \(SI\)|Conventional|Code:/;
    for (const path of ["/summary", "/results", "/analytes/creatinine", ""]) {
      await page.goto(url(patientPath + path));
      await waitForHydration(page);
      await expect(page.locator("main h1")).toBeVisible();
      await expect(page.locator("main .loading")).toHaveCount(0);
      const text = await page.locator("main").innerText();
      expect(text, `${path || "documents"}`).not.toMatch(jargon);
      // No laboratory code (a LOINC code looks like 2160-0), even in a value's tip.
      const tips = (await page.getByTestId("origin-tip").allTextContents()).join("\n");
      expect(text + tips, `${path || "documents"}`).not.toMatch(/\b\d{3,5}-\d\b/);
      await expect(page.getByTestId("units-si")).toBeHidden();
      await expect(page.locator("section.quality")).toHaveCount(0);
    }
    // A clinician sees them.
    await signOut(page);
    await signIn(page, "medecin");
    await page.goto(url(patientPath + "/results"));
    await expect(page.getByTestId("units-si")).toBeVisible();
    await expect(page.locator("section.quality")).toBeVisible();
  });

  test(`the access log reads day by day, person by person, in Paris time (${lang})`, async ({ page, context }) => {
    await useLanguage(context, lang);
    // The GP opens her patient's results: a line in the patient's log.
    await signIn(page, "medecin");
    await page.getByTestId("patient-row").filter({ hasText: "MARTIN" }).getByRole("link").click();
    await page.getByTestId("results-link").click();
    await expect(page.getByTestId("cumulative-table")).toBeVisible();
    await signOut(page);
    await signIn(page, "patient");
    await page.getByTestId("access-log-link").click();
    await expect(page.getByTestId("access-log-zone")).toContainText(lang === "fr" ? "heure de Paris" : "Paris time");
    const days = page.getByTestId("access-day");
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris" }).format(new Date());
    await expect(days.first()).toHaveAttribute("data-day", today);
    // Each day once, each person once a day.
    const dayKeys = await days.evaluateAll((ds) => ds.map((d) => d.getAttribute("data-day")));
    expect(new Set(dayKeys).size).toBe(dayKeys.length);
    for (const day of await days.all()) {
      const people = await day.locator("[data-testid=access-person] > .who").allInnerTexts();
      expect(new Set(people).size, `people of ${await day.getAttribute("data-day")}`).toBe(people.length);
    }
    const gp = days.first().getByTestId("access-person").filter({ hasText: "Dr Sophie DURAND" });
    await expect(gp).toHaveCount(1);
    await expect(gp).toContainText(lang === "fr" ? "Médecin traitant" : "Attending doctor");
    await expect(gp.getByTestId("access-row").filter({ hasText: lang === "fr" ? "Consultation de vos résultats à" : "Viewed your results at" })).toHaveCount(1);
    // Every action is named in words: none is "Other".
    const actions = await page.getByTestId("access-row").allInnerTexts();
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) expect(action).not.toMatch(lang === "fr" ? /^Autre\b/ : /^Other\b/);
    await page.screenshot({ path: `screenshots/phone/access-log-${lang}.png`, fullPage: true });
  });

  test(`a break-the-glass end time is in Paris time and says so (${lang})`, async ({ page, context, request }) => {
    const errors = collectPageErrors(page);
    await useLanguage(context, lang);
    const roux = await patientOf(request, "hopital", "ROUX");
    await signIn(page, "medecin");
    await page.locator("details.break-glass > summary").click();
    await page.locator("#bg-ins").fill(roux.ins);
    await page.locator("#bg-reason").fill("Malaise au cabinet, patient inconscient");
    await page.locator("#bg-minutes").selectOption("60");
    const asked = Date.now();
    await page.locator("details.break-glass button[type=submit]").click();
    const banner = page.getByTestId("break-glass-banner");
    await expect(banner).toBeVisible();
    const text = await banner.innerText();
    const expected = [0, 1, 2].map((extra) => `${parisTime(new Date(asked + 3600_000 + extra * 60_000 - 60_000), lang)} ${ZONE[lang]}`);
    expect(expected.some((e) => text.includes(e)), `${text} should hold one of ${expected.join(" | ")}`).toBe(true);
    expect(text).not.toContain("UTC");
    await page.screenshot({ path: `screenshots/phone/break-glass-${lang}.png` });
    await banner.locator("button[type=submit]").click();
    await expect(banner).toHaveCount(0);
    expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
  });
}

type PatientSummary = { id: string; ins: string; display_name: string };

/** A demo patient by name, as another account lists them (its own API session). */
async function patientOf(request: APIRequestContext, login: string, name: string): Promise<PatientSummary> {
  const signIn = await request.post(url("/auth/sign-in"), {
    form: { login, password: PASSWORDS[login] },
    headers: { origin: url("") },
    maxRedirects: 0,
  });
  expect(signIn.status()).toBe(303);
  const response = await request.post(url("/sfn/list_patients"), { headers: { origin: url("") }, form: {} });
  const patients = (await response.json()) as PatientSummary[];
  const found = patients.find((p) => p.display_name.startsWith(name));
  expect(found, `${login} cares for ${name}`).toBeTruthy();
  return found!;
}
