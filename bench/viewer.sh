#!/usr/bin/env bash
# Server response times of the viewer for the largest generated ten-year patient: the history
# behind the cumulative table (JSON), the results page as served (SSR), and an analyte chart
# (SVG drawn on the server). Targets (issue "The bioviewer"): table < 100 ms, chart < 30 ms.
# Usage: bench/viewer.sh [REQUESTS]   (uses target/release/bioviewer and target/site)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-30}
source bench/common.sh
site=${BIOVIEWER_SITE_ROOT:-$target/site}
"$bin" --data-dir "$tmp" --log-level warn import "$tmp/demo" >/dev/null
"$bin" --data-dir "$tmp" --log-level warn accounts demo >/dev/null
# The patient with the most reports (haemodialysis, a check every week for ten years: 500+
# sampling days, the cumulative table's worst case), seen by the demo GP through a care
# relationship recorded here. Every request below goes through the access check and the audit.
"$bin" --data-dir "$tmp" --log-level warn accounts relate --login medecin --patient-ins "$largest_ins" --kind attending_gp >/dev/null
# Runs the measures against a server keeping `$1` histories in its cache (0: none).
run_server() {
  local cache=$1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" --data-dir "$tmp" --log-level warn serve --listen "127.0.0.1:$port" --site-root "$site" --history-cache "$cache" >/dev/null &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do command curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  rm -f "$jar"
  command curl -s -o /dev/null -c "$jar" -H "Origin: $base" -d "login=medecin&password=demo-medecin-2026" "$base/auth/sign-in"
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
jar="$tmp/cookies"
curl() { command curl -b "$jar" "$@"; }
measure() {
  local name=$1 url=$2
  for _ in $(seq 1 3); do curl -s -o /dev/null "$url"; done
  for _ in $(seq 1 "$requests"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | python3 -c '
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.stdin)
print(f"{sys.argv[1]}: median {statistics.median(t):.1f} ms, p95 {t[int(len(t) * 0.95) - 1]:.1f} ms")' "$name"
}
run_server 0
patient=$(curl -s "$base/" | python3 -c '
import re, sys
html = sys.stdin.read()
rows = re.findall(r"href=\"/patients/([0-9a-f-]{36})\".*?<td class=\"num\">(\d+)", html, re.S)
print(max(rows, key=lambda r: int(r[1]))[0])')
summary=$(curl -s "$base/api/patients/$patient/history" | python3 -c '
import json, sys
h = json.load(sys.stdin)
days = {p["time"][:10] for s in h["series"] for p in s["points"] if p.get("time")}
best = max(h["series"], key=lambda s: len(s["points"]))
print(len(h["documents"]), sum(len(s["points"]) for s in h["series"]), len(days), best["analyte"])')
read -r docs points days analyte <<<"$summary"
echo "patient: $docs documents, $points points, $days sampling days (table columns); chart of $analyte"
echo "$requests requests each; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "-- no history cache (every request parses and normalises every document)"
measure "cumulative table data (GET /api/patients/{id}/history)" "$base/api/patients/$patient/history"
measure "results page (SSR)" "$base/patients/$patient/results"
measure "analyte chart (GET .../chart.svg)" "$base/api/patients/$patient/analytes/$analyte/chart.svg"
stop_server
run_server 32
echo "-- history cache on (the default): what a clinician moving between pages gets"
measure "cumulative table data (GET /api/patients/{id}/history)" "$base/api/patients/$patient/history"
measure "results page (SSR)" "$base/patients/$patient/results"
echo "results page size: $(curl -s "$base/patients/$patient/results" | wc -c) bytes, gzip $(curl -s "$base/patients/$patient/results" | gzip -6 | wc -c) bytes"
measure "analyte chart (GET .../chart.svg)" "$base/api/patients/$patient/analytes/$analyte/chart.svg"
stop_server
wasm=$(ls "$site"/pkg/bioviewer*.wasm 2>/dev/null | head -1)
if [ -n "$wasm" ]; then
  echo "wasm bundle: $(stat -c %s "$wasm") bytes, gzip $(gzip -9c "$wasm" | wc -c) bytes"
fi
