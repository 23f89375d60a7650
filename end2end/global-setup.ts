// Starts Bioviewer for the browser tests: a free port, a fresh data folder, the shared corpus and
// six generated patients imported through the real `bioviewer import` command, the demo accounts
// created by `bioviewer accounts demo`, and waits for /healthz. Then signs in as the hospital
// clinician (who cares for the corpus patient) and saves that session for the tests that need
// one (playwright.config.ts: storageState).
import { spawn, execFileSync, ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, cpSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForHealth(url: string, server: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`bioviewer exited early with code ${server.exitCode}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`bioviewer did not answer on ${url} within ${timeoutMs} ms`);
}

/** Signs in through the real form post; returns the session cookie's value. */
export async function signIn(url: string, login: string, password: string): Promise<string> {
  const response = await fetch(`${url}/auth/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: url },
    body: new URLSearchParams({ login, password }).toString(),
  });
  const cookie = (response.headers.getSetCookie?.() ?? []).find((c) => c.startsWith("bv_session="));
  const token = cookie?.split(";")[0].slice("bv_session=".length);
  if (!token) throw new Error(`could not sign in as ${login}: ${response.status} ${response.headers.get("location")}`);
  return token;
}

/** Where the signed-in browser state lives (the config points every test at it). */
export const SIGNED_IN_STATE = join(__dirname, ".auth", "hopital.json");

function writeSignedInState(token: string, _port: number): void {
  mkdirSync(join(__dirname, ".auth"), { recursive: true });
  const state = {
    cookies: [{ name: "bv_session", value: token, domain: "127.0.0.1", path: "/", expires: -1, httpOnly: true, secure: false, sameSite: "Lax" }],
    origins: [],
  };
  writeFileSync(SIGNED_IN_STATE, JSON.stringify(state));
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const repo = resolve(__dirname, "..");
  const binary = process.env.BIOVIEWER_BIN ?? join(repo, "target", "debug", "bioviewer");
  const siteRoot = process.env.BIOVIEWER_SITE_ROOT ?? join(repo, "target", "site");
  const corpus = process.env.BIOVIEWER_CORPUS ?? join(repo, "..", "shared", "corpus", "ans-cr-bio");
  for (const [what, path] of [["server binary", binary], ["site", join(siteRoot, "pkg")], ["corpus", corpus]]) {
    if (!existsSync(path)) throw new Error(`${what} not found at ${path}: run the tests through 'make test'`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "bioviewer-e2e-"));
  const env: NodeJS.ProcessEnv = { ...process.env, BIOVIEWER_DATA_DIR: dataDir, BIOVIEWER_LOG: "warn" };
  // BIOVIEWER_E2E_POSTGRES names a PostgreSQL server (make test runs the journey once on it):
  // the server then keeps everything in a new database there, dropped at the end.
  const postgres = process.env.BIOVIEWER_E2E_POSTGRES;
  let dropDatabase = () => {};
  if (postgres) {
    const name = `bioviewer_e2e_${process.pid}_${Date.now()}`;
    execFileSync("psql", [postgres, "-q", "-c", `CREATE DATABASE ${name}`], { stdio: ["ignore", "ignore", "inherit"] });
    env.BIOVIEWER_DATABASE_URL = postgres.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
    dropDatabase = () =>
      execFileSync("psql", [postgres, "-q", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: ["ignore", "ignore", "inherit"] });
  }
  // One folder, the corpus and generated patients: imported, and served by the embedded DMP
  // simulator, so opening a patient syncs them over real HTTP.
  const demo = join(dataDir, "demo");
  execFileSync(binary, ["demo-data", "--patients", "6", "--years", "2", "--out", demo], { env, stdio: ["ignore", "ignore", "inherit"] });
  cpSync(corpus, join(demo, "ans-cr-bio"), { recursive: true });
  execFileSync(binary, ["import", demo], { env, stdio: ["ignore", "ignore", "inherit"] });
  execFileSync(binary, ["accounts", "demo"], { env, stdio: ["ignore", "ignore", "inherit"] });
  // A system of the care team reading the FHIR API on the demo GP's behalf (fhir.spec.ts): the
  // administrator's command prints its bearer token once.
  process.env.BIOVIEWER_FHIR_TOKEN = execFileSync(binary, ["fhir-clients", "add", "--name", "EHR du cabinet", "--as", "medecin"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  })
    .toString()
    .trim();

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // A real OpenID provider (npm oidc-provider) standing in for Pro Santé Connect.
  const oidcPort = await freePort();
  const provider = spawn("node", [join(__dirname, "oidc", "provider.mjs"), String(oidcPort), `${url}/auth/oidc/callback`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error("the OpenID provider did not start")), 15_000);
    provider.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) {
        clearTimeout(timer);
        ready();
      }
    });
    provider.on("exit", (code) => fail(new Error(`the OpenID provider exited with ${code}`)));
  });
  const server = spawn(binary, ["serve", "--listen", `127.0.0.1:${port}`, "--site-root", siteRoot], {
    env: {
      ...env,
      BIOVIEWER_OIDC_ISSUER: `http://127.0.0.1:${oidcPort}`,
      BIOVIEWER_OIDC_CLIENT_ID: "bioviewer",
      BIOVIEWER_OIDC_CLIENT_SECRET: "bioviewer-test-secret",
      BIOVIEWER_OIDC_REDIRECT_URL: `${url}/auth/oidc/callback`,
      BIOVIEWER_DMP_SIMULATOR: demo,
      BIOVIEWER_DMP_STRUCTURE_KEY: join(repo, "server", "tests", "data", "vihf-test-structure.key.pem"),
      BIOVIEWER_DMP_STRUCTURE_CERT: join(repo, "server", "tests", "data", "vihf-test-structure.cert.pem"),
      // No acr_values: oidc-provider's development login sets no authentication level (the
      // acr check is covered by server/src/oidc.rs's tests).
    },
    // The server logs (warnings and errors only) to standard output: shown with the test run.
    stdio: ["ignore", "inherit", "inherit"],
  });
  await waitForHealth(url, server, 30_000);
  process.env.BIOVIEWER_URL = url;
  writeSignedInState(await signIn(url, "hopital", "demo-hopital-2026"), port);

  return async () => {
    server.kill("SIGTERM");
    provider.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    if (server.exitCode === null) server.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
    dropDatabase();
  };
}
