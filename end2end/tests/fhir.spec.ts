// The FHIR read API as another program of the care team uses it: a maintained FHIR client
// library (npm fhir-kit-client) with the bearer token an administrator issued to "EHR du
// cabinet" on behalf of the demo GP (global-setup.ts). No browser: plain requests.
import { test, APIRequestContext } from "@playwright/test";
import { url, expect } from "./helpers";

test.use({ storageState: { cookies: [], origins: [] } });

type PatientSummary = { id: string; ins: string; display_name: string };

async function patientsOf(request: APIRequestContext, login: string, password: string): Promise<PatientSummary[]> {
  const signIn = await request.post(url("/auth/sign-in"), { form: { login, password }, headers: { origin: url("") }, maxRedirects: 0 });
  expect(signIn.status()).toBe(303);
  const response = await request.post(url("/sfn/list_patients"), { headers: { origin: url("") }, form: {} });
  expect(response.ok()).toBe(true);
  return (await response.json()) as PatientSummary[];
}

// fhir-kit-client is an ES module; Playwright compiles this file to CommonJS.
async function fhirClient(token?: string) {
  const { Client } = await import("fhir-kit-client");
  return new Client({ baseUrl: url("/fhir"), ...(token ? { bearerToken: token } : {}) });
}

async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    return (error as { response?: { status: number } }).response?.status ?? 0;
  }
}

test("an EHR reads its patients' results with a FHIR client and a bearer token", async ({ request }) => {
  const token = process.env.BIOVIEWER_FHIR_TOKEN;
  expect(token, "global-setup issued a token").toBeTruthy();
  const client = await fhirClient(token);
  const capability = (await client.capabilityStatement()) as { fhirVersion: string; rest: { resource: { type: string }[] }[] };
  expect(capability.fhirVersion).toBe("4.0.1");
  expect(capability.rest[0].resource.map((r) => r.type)).toEqual(["Patient", "Observation", "DiagnosticReport"]);

  const mine = await patientsOf(request, "medecin", "demo-medecin-2026");
  expect(mine.length).toBeGreaterThan(0);
  const patient = mine[0];
  // The EHR knows its patient by INS.
  const found = (await client.search({ resourceType: "Patient", searchParams: { identifier: patient.ins } })) as {
    total: number;
    entry: { resource: { id: string } }[];
  };
  expect(found.total).toBe(1);
  expect(found.entry[0].resource.id).toBe(patient.id);
  const read = (await client.read({ resourceType: "Patient", id: patient.id })) as { identifier: { value: string }[] };
  expect(read.identifier[0].value).toBe(patient.ins);

  // Every Observation, page by page through the server's links.
  type Bundle = { total: number; entry?: { resource: { subject: { reference: string }; effectiveDateTime?: string } }[]; link: { relation: string }[] };
  let page = (await client.search({ resourceType: "Observation", searchParams: { patient: patient.id, _count: 20 } })) as Bundle;
  const total = page.total;
  expect(total).toBeGreaterThan(20);
  let seen = 0;
  for (;;) {
    for (const e of page.entry ?? []) {
      expect(e.resource.subject.reference).toBe(`Patient/${patient.id}`);
      if (e.resource.effectiveDateTime?.includes("T")) expect(e.resource.effectiveDateTime).toMatch(/T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
      seen += 1;
    }
    const next = client.nextPage({ bundle: page as never });
    if (!next) break;
    page = (await next) as Bundle;
  }
  expect(seen).toBe(total);
  const reports = (await client.search({ resourceType: "DiagnosticReport", searchParams: { patient: patient.id } })) as {
    total: number;
    entry: { resource: { id: string; result: { reference: string }[] } }[];
  };
  expect(reports.total).toBeGreaterThan(0);
  // A report's references resolve on the server, as a client follows them.
  const report = reports.entry.find((e) => e.resource.result?.length)!.resource;
  expect(((await client.read({ resourceType: "DiagnosticReport", id: report.id })) as { id: string }).id).toBe(report.id);
  const [resultType, resultId] = report.result[0].reference.split("/");
  const observation = (await client.read({ resourceType: resultType as "Observation", id: resultId })) as { id: string; subject: { reference: string } };
  expect(observation.id).toBe(resultId);
  expect(observation.subject.reference).toBe(`Patient/${patient.id}`);

  // A patient the GP does not care for answers like one that does not exist.
  const theirs = await patientsOf(request, "hopital", "demo-hopital-2026");
  const stranger = theirs.find((p) => !mine.some((m) => m.id === p.id));
  expect(stranger).toBeTruthy();
  const refused = await statusOf(client.search({ resourceType: "Observation", searchParams: { patient: stranger!.id } }));
  const missing = await statusOf(client.search({ resourceType: "Observation", searchParams: { patient: "00000000-0000-4000-8000-000000000000" } }));
  expect([refused, missing]).toEqual([404, 404]);
  const byIns = (await client.search({ resourceType: "Patient", searchParams: { identifier: stranger!.ins } })) as { total: number };
  expect(byIns.total).toBe(0);

  // Without the token, or with another, nothing.
  expect(await statusOf((await fhirClient()).read({ resourceType: "Patient", id: patient.id }))).toBe(401);
  expect(await statusOf((await fhirClient("forged-token")).read({ resourceType: "Patient", id: patient.id }))).toBe(401);
});
