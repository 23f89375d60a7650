#!/usr/bin/env bash
# The HTML each page sends (results, summary, analyte, document), for every patient of the
# ten-year demo, as the demo GP reads them: what a browser downloads before hydrating, the
# hydration data included. Issue 13 ("fast under load"): the results page embedded the whole
# history (551 KB for the ten-year INR patient) to show twelve columns.
# Usage: bench/pages.sh   (uses $CARGO_TARGET_DIR/release/bioviewer, or BIOVIEWER_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
site=${BIOVIEWER_SITE_ROOT:-$target/site}
import_demo_for_the_gp
serve_signed_in_as_gp
python3 - "$base" "$jar" <<'PY'
import http.cookiejar, json, sys, urllib.request
base, jar_file = sys.argv[1], sys.argv[2]
jar = http.cookiejar.MozillaCookieJar(jar_file)
jar.load(ignore_discard=True, ignore_expires=True)
cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
def get(path):
    return urllib.request.urlopen(urllib.request.Request(base + path, headers={"Cookie": cookie})).read()
def post(path):
    return json.load(urllib.request.urlopen(urllib.request.Request(base + path, data=b"", headers={"Cookie": cookie, "Origin": base})))
print("| patient | days | results page | results, oldest page | summary | analyte (busiest) | document |")
print("|---|---|---|---|---|---|---|")
for p in post("/sfn/list_patients"):
    history = json.loads(get(f"/api/patients/{p['id']}/history"))
    series = [s for s in history.get("series", []) if s.get("points")]
    if not series:
        continue
    days = {pt["time"][:10] for s in series for pt in s["points"] if pt.get("time")}
    busiest = max(series, key=lambda s: len(s["points"]))
    document = history["documents"][-1]["id"]
    kb = lambda path: f"{len(get(path)) / 1000:.0f} KB"
    at = f"/patients/{p['id']}"
    print(f"| {p['display_name'].split()[0]} | {len(days)} | {kb(at + '/results')} | {kb(at + '/results?page=9999')} "
          f"| {kb(at + '/summary')} | {kb(at + '/analytes/' + busiest['analyte'])} ({busiest['analyte']}) "
          f"| {kb(at + '/documents/' + document)} |")
PY
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
