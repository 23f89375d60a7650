#!/usr/bin/env bash
# Fifty clinicians at once: the mix of bench/load/load.mjs (patient list, summary, results page,
# the history JSON, an analyte chart, a document) against
#   sqlite:   one instance on SQLite, or
#   postgres: two instances on one PostgreSQL database behind Debian's nginx (started here, with
#             bench/load/nginx.conf; a new database on the server of $PG_URL, dropped after),
# every patient of the ten-year demo related to the demo GP, each connection its own signed-in
# session. Reports p50/p95/p99 per kind of request and overall, requests/s, errors, the servers'
# RSS before and after, and checks the audit trail after. Targets (issue 13): p99 < 300 ms, 0 errors.
# Usage: bench/load.sh [sqlite|postgres] [CONNECTIONS] [SECONDS]
#   (uses $CARGO_TARGET_DIR/release/bioviewer and its site; PG_URL default postgres://postgres@127.0.0.1:5432/test)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-sqlite}
connections=${2:-50}
duration=${3:-60}
case "$mode" in sqlite|postgres) ;; *) echo "usage: bench/load.sh [sqlite|postgres] [CONNECTIONS] [SECONDS]"; exit 2;; esac
source bench/common.sh
site=${BIOVIEWER_SITE_ROOT:-$target/site}
[ -d bench/load/node_modules/autocannon ] || (cd bench/load && npm install --no-audit --no-fund --loglevel=error >/dev/null)
pids=()
database=""
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$database" ] && psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" 2>/dev/null || true
  cleanup
}
trap stop_all EXIT
if [ "$mode" = postgres ]; then
  PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
  command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
  database="bioviewer_load_$$"
  psql "$PG_URL" -q -c "CREATE DATABASE $database"
  export BIOVIEWER_DATABASE_URL="${PG_URL%/*}/$database"
fi
import_demo_for_the_gp
if [ "$mode" = sqlite ]; then
  port=$(free_port)
  "$bin" --data-dir "$tmp" --log-level warn serve --listen "127.0.0.1:$port" --site-root "$site" >/dev/null &
  pids+=($!)
else
  # Two instances (the same data folder: one audit key) and nginx in front of both.
  upstreams=""
  for _ in 1 2; do
    p=$(free_port)
    "$bin" --data-dir "$tmp" --log-level warn serve --listen "127.0.0.1:$p" --site-root "$site" --trusted-proxy 127.0.0.1 >/dev/null &
    pids+=($!)
    upstreams+="        server 127.0.0.1:$p;\n"
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
  done
  port=$(free_port)
  mkdir -p "$tmp/nginx"
  sed -e "s|@PORT@|$port|" -e "s|@UPSTREAMS@|$upstreams|" -e "s|@TMP@|$tmp/nginx|g" bench/load/nginx.conf > "$tmp/nginx/nginx.conf"
  nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" &
  pids+=($!)
fi
pid=${pids[0]}
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
# One session per connection, and what each clinician opens: patients, a document, an analyte.
python3 - "$base" "$connections" > "$tmp/targets.json" <<'PY'
import http.cookiejar, json, sys, urllib.parse, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
cookies = []
for _ in range(n):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    data = urllib.parse.urlencode({"login": "medecin", "password": "demo-medecin-2026"}).encode()
    opener.open(urllib.request.Request(base + "/auth/sign-in", data=data, headers={"Origin": base}))
    cookies.append("; ".join(f"{c.name}={c.value}" for c in jar))
def post(path, form, cookie):
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(form).encode(), headers={"Origin": base, "Cookie": cookie})
    return json.load(urllib.request.urlopen(request))
patients = []
for p in post("/sfn/list_patients", {}, cookies[0]):
    history = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/patients/{p['id']}/history", headers={"Cookie": cookies[0]})))
    series = [s for s in history.get("series", []) if s.get("points")]
    documents = history.get("documents", [])
    if series and documents:
        busiest = max(series, key=lambda s: len(s["points"]))
        patients.append({"id": p["id"], "document": documents[-1]["id"], "analyte": busiest["analyte"]})
json.dump({"cookies": cookies, "patients": patients}, sys.stdout)
PY
rss() {
  local out=""
  for p in "${pids[@]}"; do
    case "$(cat /proc/$p/comm 2>/dev/null)" in
      bioviewer*) out+="$(awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/$p/status") " ;;
    esac
  done
  echo "$out"
}
echo "mode: $mode"
echo "patients in the mix: $(python3 -c "import json; print(len(json.load(open('$tmp/targets.json'))['patients']))"), sessions: $connections"
echo "server RSS before: $(rss)"
node bench/load/load.mjs "$base" "$tmp/targets.json" "$connections" "$duration" | tee "$tmp/result.json" | python3 bench/load/summary.py
echo "server RSS after: $(rss)"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
pids=(); pid=""
"$bin" --data-dir "$tmp" --log-level warn audit verify
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
