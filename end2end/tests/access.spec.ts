import { test, Page, APIRequestContext } from "@playwright/test";
import { url, waitForHydration, collectPageErrors, expect } from "./helpers";

// Each test signs in itself: no stored session.
test.use({ storageState: { cookies: [], origins: [] } });

type PatientSummary = { id: string; ins: string; display_name: string };

/** The demo patients, as the hospital clinician's session lists them (global-setup signed in). */
async function patientsOf(request: APIRequestContext, login: string, password: string): Promise<PatientSummary[]> {
  const signIn = await request.post(url("/auth/sign-in"), {
    form: { login, password },
    headers: { origin: url("") },
    maxRedirects: 0,
  });
  expect(signIn.status()).toBe(303);
  const response = await request.post(url("/sfn/list_patients"), { headers: { origin: url("") }, form: {} });
  expect(response.ok()).toBe(true);
  return (await response.json()) as PatientSummary[];
}

async function signIn(page: Page, login: string, password: string): Promise<void> {
  await page.goto(url("/"));
  await expect(page).toHaveURL(/\/connexion/);
  await page.getByLabel("Identifiant").fill(login);
  await page.getByLabel("Mot de passe").fill(password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await expect(page.getByTestId("user-menu")).toBeVisible();
}

test("a wrong password is refused with a clear message", async ({ page }) => {
  await page.goto(url("/patients"));
  await expect(page).toHaveURL(/\/connexion\?next=/);
  await page.getByLabel("Identifiant").fill("medecin");
  await page.getByLabel("Mot de passe").fill("not the password");
  await page.getByRole("button", { name: "Se connecter" }).click();
  await expect(page.getByTestId("sign-in-notice")).toHaveText("Identifiant ou mot de passe incorrect.");
  await expect(page.getByTestId("user-menu")).toHaveCount(0);
});

test("a GP sees an own patient, not another, until breaking the glass with a reason", async ({ page, request }) => {
  const errors = collectPageErrors(page);
  // Ids and INS of the demo patients, from the hospital clinician's own session.
  const hospitalPatients = await patientsOf(request, "hopital", "demo-hopital-2026");
  const roux = hospitalPatients.find((p) => p.display_name.startsWith("ROUX"));
  expect(roux, "the hospital clinician cares for ROUX").toBeTruthy();

  await signIn(page, "medecin", "demo-medecin-2026");
  await expect(page.getByTestId("user-menu")).toContainText("Dr Sophie DURAND");
  const rows = page.getByTestId("patient-row");
  await expect(rows.filter({ hasText: "MARTIN" })).toBeVisible();
  await expect(rows.filter({ hasText: "ROUX" })).toHaveCount(0);
  await expect(rows.filter({ hasText: "PAT-TROIS" })).toHaveCount(0);

  // Her own patient's results; opening the patient syncs the DMP (the embedded simulator).
  await rows.filter({ hasText: "MARTIN" }).getByRole("link").click();
  await expect(page.getByRole("heading", { level: 2 })).toHaveText("Documents");
  await expect(page.getByTestId("dmp-sync")).toContainText(/Synchronisation avec le DMP en cours|DMP synchronisé/);
  // Everything was imported already: the sync finds the documents and fetches nothing new. The
  // page asks again while the sync runs: no reload needed.
  await expect(page.getByTestId("dmp-sync")).toContainText(/DMP synchronisé.*documents au DMP, 0 nouveaux/, { timeout: 15_000 });
  await waitForHydration(page);

  // Another patient, by address: refused, and nothing of the patient shows.
  await page.goto(url(`/patients/${roux!.id}/summary`));
  await expect(page.getByText(/Patient introuvable, ou vous n'avez pas de relation de soin/)).toBeVisible();
  await expect(page.getByText("ROUX")).toHaveCount(0);
  const api = await page.request.get(url(`/api/patients/${roux!.id}/history`));
  expect(api.status()).toBe(404);

  // Break the glass: reason and duration, then the record opens with a banner.
  await page.goto(url("/"));
  await page.getByText("Accès en urgence (bris de glace)").click();
  await page.getByLabel("INS", { exact: true }).fill(roux!.ins);
  await page.getByLabel("Motif (au moins 15 caractères)").fill("Malaise au cabinet, patient inconscient");
  await page.getByLabel("Durée").selectOption("60");
  await page.getByRole("button", { name: "Ouvrir le dossier en urgence" }).click();
  await expect(page).toHaveURL(new RegExp(`/patients/${roux!.id}/summary`));
  const banner = page.getByTestId("break-glass-banner");
  await expect(banner).toBeVisible();
  await expect(banner).toContainText("Malaise au cabinet, patient inconscient");
  await expect(page.getByTestId("patient-banner")).toContainText("ROUX");
  await page.screenshot({ path: "screenshots/break-glass.png", fullPage: true });
  // The banner stays on every page of that patient while it lasts.
  await page.goto(url(`/patients/${roux!.id}/results`));
  await expect(page.getByTestId("break-glass-banner")).toBeVisible();
  // Ended early: refused again.
  await page.getByTestId("break-glass-banner").getByRole("button", { name: "Terminer l'accès" }).click();
  await expect(page).toHaveURL(url("/"));
  expect((await page.request.get(url(`/api/patients/${roux!.id}/history`))).status()).toBe(404);

  // Sign-out really ends the session.
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/connexion\?signed_out=1/);
  await page.goto(url(`/patients/${roux!.id}/summary`));
  await expect(page).toHaveURL(/\/connexion/);
  // The refused page answers 404, which the browser reports; nothing else may fail.
  expect(errors.filter((e) => !e.includes("status of 404"))).toEqual([]);
});

test("the patient signs in, sees her own results and who accessed them", async ({ page }) => {
  const errors = collectPageErrors(page);
  await signIn(page, "patient", "demo-patient-2026");
  // She lands on her own summary, not on a list of patients.
  await expect(page).toHaveURL(/\/patients\/[0-9a-f-]+\/summary$/);
  await expect(page.getByTestId("patient-row")).toHaveCount(0);
  await expect(page.getByTestId("patient-banner")).toContainText("MARTIN");
  // Her summary, in plainer words: what a test measures, "within the usual range".
  const summary = page.getByTestId("summary-table");
  await expect(summary).toContainText("Le reflet de votre taux de sucre moyen des 2 à 3 derniers mois");
  await expect(summary).toContainText(/valeurs habituelles/);
  await expect(page.getByText("Seul votre médecin peut les interpréter pour vous")).toBeVisible();
  await page.getByTestId("access-log-link").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Qui a consulté mon dossier");
  // The GP's visit of the previous test, with its grounds, under its day.
  const gp = page.getByTestId("access-person").filter({ hasText: "Dr Sophie DURAND" });
  await expect(gp.first()).toBeVisible();
  await expect(gp.first()).toContainText("Médecin traitant");
  await expect(page.getByTestId("access-person").filter({ hasText: "Vous" }).first()).toBeVisible();
  // Accesses are counted and paged; nobody was refused her record here: no refusals section.
  await expect(page.getByTestId("access-total")).toContainText("accès enregistrés");
  await expect(page.getByTestId("refusals")).toHaveCount(0);
  await page.screenshot({ path: "screenshots/access-log.png", fullPage: true });
  await waitForHydration(page);
  await page.getByTestId("lang-en").click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Who accessed my record");
  await expect(gp.first()).toContainText("Attending doctor");
  expect(errors).toEqual([]);
});

test("a professional signs in with Pro Santé Connect (a real OpenID provider) and has no patient yet", async ({ page }) => {
  const errors = collectPageErrors(page);
  await page.goto(url("/connexion"));
  await page.getByTestId("oidc-sign-in").click();
  // The provider's own pages (oidc-provider's development login and consent).
  await expect(page).not.toHaveURL(new RegExp(`^${url("")}`));
  await page.locator("input[name=login]").fill("psc-urgentiste");
  await page.locator("input[name=password]").fill("any");
  await page.locator("button[type=submit]").click();
  await page.locator("button[type=submit]").click(); // consent
  // Back in Bioviewer, signed in with the identity the provider vouched for.
  await expect(page.getByTestId("user-menu")).toContainText("Dr MOREAU Léa");
  await expect(page.getByTestId("user-menu")).toContainText("Médecin, Centre hospitalier de test");
  await expect(page.getByText("Aucun patient à afficher")).toBeVisible();
  // A tampered callback (a state this browser did not start) is refused.
  await page.goto(url("/auth/oidc/callback?code=forged&state=forged"));
  await expect(page).toHaveURL(/error=oidc/);
  await expect(page.getByTestId("sign-in-notice")).toContainText("Pro Santé Connect");
  // The provider's development pages link a stylesheet on the internet (unreachable here); the
  // forged callback's refusal is an expected 4xx.
  expect(errors.filter((e) => !e.includes("ERR_NAME_NOT_RESOLVED") && !e.includes("status of 4"))).toEqual([]);
});

test("a professional uploads a file: kept even when unreadable, with the reason", async ({ page }) => {
  await signIn(page, "hopital", "demo-hopital-2026");
  await page.getByText("Importer des comptes rendus (fichiers CDA)").click();
  await page.getByLabel("Fichiers").setInputFiles({ name: "illisible.xml", mimeType: "text/xml", buffer: Buffer.from("<ClinicalDocument><id") });
  await page.getByRole("button", { name: "Importer", exact: true }).click();
  // One line per file: its name and what became of it, the problem in the reader's language.
  const line = page.getByTestId("upload-file");
  await expect(line).toHaveCount(1);
  await expect(line).toContainText("illisible.xml");
  await expect(line).toContainText("Conservé avec un problème, rattaché à aucun dossier : Le document");
});

test("the cumulative table offers the date of my previous visit as 'since my last visit'", async ({ page }) => {
  const errors = collectPageErrors(page);
  await signIn(page, "hopital", "demo-hopital-2026");
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("results-link").click();
  await expect(page.getByTestId("cumulative-table")).toBeVisible();
  // Sessions are dated to the second: the next one must start in a later second.
  await page.waitForTimeout(1100);
  await page.getByTestId("sign-out").click();
  await signIn(page, "hopital", "demo-hopital-2026");
  await page.getByRole("link", { name: /PAT-TROIS/ }).click();
  await page.getByTestId("results-link").click();
  await waitForHydration(page);
  const previous = page.getByTestId("since-previous-visit");
  // Today in Paris time, the zone the interface shows.
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Paris" }).format(new Date());
  const [y, m, d] = today.split("-");
  await expect(previous).toHaveText(`Ma dernière consultation (${d}/${m}/${y})`);
  await previous.click();
  // The date field writes the date as the interface does.
  await expect(page.getByTestId("since")).toHaveValue(`${d}/${m}/${y}`);
  // Nothing in the agency's examples was sampled after today.
  await expect(page.getByTestId("cumulative-table").locator("th.day.new")).toHaveCount(0);
  expect(errors).toEqual([]);
});
