#!/usr/bin/env bash
# A population: PATIENTS generated patients over YEARS years, a GP with a care relationship to
# RELATED of them. Measures what grows with the population: the import throughput, the database
# size per patient-year, and the GP's patient list (the page as served, and the server function
# the page's search filters in the browser). Target (issue 13): list < 200 ms for 1,500 patients.
# Usage: [DATABASE=postgres] bench/population.sh [PATIENTS] [YEARS] [RELATED] [REQUESTS]
#   (uses $CARGO_TARGET_DIR/release/bioviewer and its site; defaults 2000 5 1500 30; with
#   DATABASE=postgres, a new database on the server of $PG_URL, default
#   postgres://postgres@127.0.0.1:5432/test, dropped after)
set -euo pipefail
cd "$(dirname "$0")/.."
patients=${1:-2000}
years=${2:-5}
related=${3:-1500}
requests=${4:-30}
target=${CARGO_TARGET_DIR:-target}
bin=${BIOVIEWER_BIN:-$target/release/bioviewer}
site=${BIOVIEWER_SITE_ROOT:-$target/site}
[ -x "$bin" ] || { echo "build first: cargo build --release -p bioviewer"; exit 1; }
tmp=$(mktemp -d)
pid=""
database=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$database" ] && { sleep 0.5; psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
if [ "${DATABASE:-sqlite}" = postgres ]; then
  PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
  database="bioviewer_population_$$"
  psql "$PG_URL" -q -c "CREATE DATABASE $database"
  export BIOVIEWER_DATABASE_URL="${PG_URL%/*}/$database"
fi
echo "database: ${DATABASE:-sqlite}"
seconds() { python3 -c 'import time; print(time.time())'; }

start=$(seconds)
"$bin" demo-data --patients "$patients" --years "$years" --out "$tmp/demo" >/dev/null
documents=$(find "$tmp/demo" -name '*.xml' | wc -l)
echo "generated $patients patients, $years years: $documents documents in $(python3 -c "print(f'{$(seconds) - $start:.1f}')") s"

start=$(seconds)
"$bin" --data-dir "$tmp" --log-level warn import "$tmp/demo" >/dev/null
took=$(python3 -c "print($(seconds) - $start)")
python3 -c "print(f'import: {$documents / $took:.0f} documents/s ({$took:.1f} s)')"
if [ -n "$database" ]; then
  size=$(psql "$BIOVIEWER_DATABASE_URL" -Atc "SELECT pg_database_size(current_database())")
else
  size=$(stat -c %s "$tmp/bioviewer.db")
fi
python3 -c "print(f'database: {$size / 1e6:.1f} MB, {$size / ($patients * $years) / 1e3:.1f} KB per patient-year')"

"$bin" --data-dir "$tmp" --log-level warn accounts demo >/dev/null
start=$(seconds)
for ins in $(ls "$tmp/demo" | grep -E '^[0-9]{15}$' | head -n "$related"); do
  "$bin" --data-dir "$tmp" --log-level error accounts relate --login medecin --patient-ins "$ins" --kind attending_gp >/dev/null
done
echo "related the demo GP to $related patients in $(python3 -c "print(f'{$(seconds) - $start:.1f}')") s"

source bench/serve.sh
serve_signed_in_as_gp
listed=$(curl -s -b "$jar" -H "Origin: $base" -X POST "$base/sfn/list_patients" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "the GP's list holds $listed patients"
measure() {
  local name=$1; shift
  for _ in $(seq 1 3); do curl -s -o /dev/null -b "$jar" "$@"; done
  for _ in $(seq 1 "$requests"); do curl -s -o /dev/null -b "$jar" -w '%{time_total}\n' "$@"; done | python3 -c '
import sys, statistics
t = sorted(float(x) * 1000 for x in sys.stdin)
print(f"{sys.argv[1]}: median {statistics.median(t):.1f} ms, p95 {t[int(len(t) * 0.95) - 1]:.1f} ms")' "$name"
}
measure "patient list page (SSR, GET /)" "$base/"
measure "patient list data (POST /sfn/list_patients)" -H "Origin: $base" -X POST "$base/sfn/list_patients"
echo "patient list page size: $(curl -s -b "$jar" "$base/" | wc -c) bytes"
