// The clinicians' mix of bench/load.sh: CONNECTIONS signed-in sessions (one per connection),
// each going round the pages a clinician opens for a patient (patient list, summary, results
// page, the history behind it, an analyte chart, a document), for DURATION seconds.
// Prints the latency percentiles of the whole mix and of each kind of request, as JSON.
// Usage: node load.mjs BASE_URL TARGETS.json CONNECTIONS DURATION
import autocannon from "autocannon";
import { readFileSync } from "node:fs";

const [base, targetsFile, connections, duration] = process.argv.slice(2);
// { "cookies": ["bv_session=...", ...], "patients": [{ "id", "document", "analyte" }, ...] }
const targets = JSON.parse(readFileSync(targetsFile, "utf8"));
const routes = (p) => [
  ["patient list", "/"],
  ["summary", `/patients/${p.id}/summary`],
  ["results page", `/patients/${p.id}/results`],
  ["history JSON", `/api/patients/${p.id}/history`],
  ["analyte chart", `/api/patients/${p.id}/analytes/${p.analyte}/chart.svg`],
  ["document view", `/patients/${p.id}/documents/${p.document}`],
];
const kinds = routes(targets.patients[0]).map(([kind]) => kind);
const latencies = Object.fromEntries(kinds.map((k) => [k, []]));
let client = 0;

const instance = autocannon({
  url: base,
  connections: Number(connections),
  duration: Number(duration),
  // Each connection is one clinician: her own session, her own walk through the patients.
  setupClient: (c) => {
    const me = client++;
    c.setHeaders({ cookie: targets.cookies[me % targets.cookies.length] });
    let step = me * 7;
    const next = () => {
      const patient = targets.patients[Math.floor(step / kinds.length) % targets.patients.length];
      const [kind, path] = routes(patient)[step % kinds.length];
      step++;
      return { kind, path };
    };
    let current = next();
    c.setRequests([{ method: "GET", path: current.path }]);
    c.on("response", (_status, _bytes, responseTime) => {
      latencies[current.kind].push(responseTime);
      current = next();
      c.setRequests([{ method: "GET", path: current.path }]);
    });
  },
});

instance.on("done", (result) => {
  const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
  const byKind = {};
  for (const kind of kinds) {
    const sorted = latencies[kind].slice().sort((a, b) => a - b);
    byKind[kind] = { requests: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
  }
  console.log(
    JSON.stringify({
      connections: Number(connections),
      duration_s: Number(duration),
      requests: result.requests.total,
      requests_per_s: result.requests.average,
      p50_ms: result.latency.p50,
      p97_5_ms: result.latency.p97_5,
      p99_ms: result.latency.p99,
      errors: result.errors,
      timeouts: result.timeouts,
      non_2xx: result.non2xx,
      by_kind: byKind,
    }),
  );
});
