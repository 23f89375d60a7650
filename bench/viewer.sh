#!/usr/bin/env bash
# Server response times of the viewer for the largest generated ten-year patient: the history
# behind the cumulative table (JSON), the results page as served (SSR), and an analyte chart
# (SVG drawn on the server). Targets (issue "The bioviewer"): table < 100 ms, chart < 30 ms.
# Usage: bench/viewer.sh [REQUESTS]   (uses target/release/bioviewer and target/site)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-30}
target=${CARGO_TARGET_DIR:-target}
bin=${BIOVIEWER_BIN:-$target/release/bioviewer}
site=${BIOVIEWER_SITE_ROOT:-$target/site}
[ -x "$bin" ] || { echo "build first: cargo build --release -p bioviewer (and make site)"; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin" demo-data --patients 6 --years 10 --out "$tmp/demo" >/dev/null
"$bin" --data-dir "$tmp" --log-level warn import "$tmp/demo" >/dev/null
"$bin" --data-dir "$tmp" --log-level warn accounts demo >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$tmp" --log-level warn serve --listen "127.0.0.1:$port" --site-root "$site" >/dev/null &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
# Signed in as the demo GP, who sees the anticoagulation patient (the most reports) through
# the reports she prescribed. Every request below goes through the access check and the audit.
jar="$tmp/cookies"
curl -s -o /dev/null -c "$jar" -H "Origin: $base" -d "login=medecin&password=demo-medecin-2026" "$base/auth/sign-in"
curl() { command curl -b "$jar" "$@"; }
# The patient with the most documents.
patient=$(curl -s "$base/" | python3 -c '
import re, sys
html = sys.stdin.read()
rows = re.findall(r"href=\"/patients/([0-9a-f-]{36})\".*?<td class=\"num\">(\d+)", html, re.S)
print(max(rows, key=lambda r: int(r[1]))[0])')
docs=$(curl -s "$base/api/patients/$patient/history" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(len(h["documents"]), sum(len(s["points"]) for s in h["series"]))')
analyte=$(curl -s "$base/api/patients/$patient/history" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(max(h["series"], key=lambda s: len(s["points"]))["analyte"])')
echo "patient: $docs (documents, points); chart of $analyte; $requests requests each; $(nproc) cores"
measure() {
  local name=$1 url=$2
  for _ in $(seq 1 3); do curl -s -o /dev/null "$url"; done
  for _ in $(seq 1 "$requests"); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done | python3 -c '
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.stdin)
print(f"{sys.argv[1]}: median {statistics.median(t):.1f} ms, p95 {t[int(len(t) * 0.95) - 1]:.1f} ms")' "$name"
}
measure "cumulative table data (GET /api/patients/{id}/history)" "$base/api/patients/$patient/history"
measure "results page (SSR)" "$base/patients/$patient/results"
measure "analyte chart (GET .../chart.svg)" "$base/api/patients/$patient/analytes/$analyte/chart.svg"
if [ -f "$site/pkg/bioviewer.wasm" ]; then
  echo "wasm bundle: $(stat -c %s "$site/pkg/bioviewer.wasm") bytes, gzip $(gzip -9c "$site/pkg/bioviewer.wasm" | wc -c) bytes"
fi
