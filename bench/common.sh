# Sourced by the benchmark scripts: the release binary, a scratch folder removed on exit (with
# the server or simulator whose pid is in `pid` stopped), the generated ten-year demo, and its
# patient with the most reports (haemodialysis, a check every week: `largest`, `largest_ins`).
target=${CARGO_TARGET_DIR:-target}
bin=${BIOVIEWER_BIN:-$target/release/bioviewer}
[ -x "$bin" ] || { echo "build first: cargo build --release -p bioviewer"; exit 1; }
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin" demo-data --patients 7 --years 10 --out "$tmp/demo" >/dev/null
largest=$(for d in "$tmp"/demo/*/; do echo "$(ls "$d" | wc -l) $d"; done | sort -n | tail -1 | cut -d' ' -f2)
largest_ins=$(basename "$largest")

source bench/serve.sh

# Imports the demo into the data folder $tmp (or the database of $BIOVIEWER_DATABASE_URL), creates
# the demo accounts and relates the demo GP to every demo patient: the pages she reads.
import_demo_for_the_gp() {
  "$bin" --data-dir "$tmp" --log-level warn import "$tmp/demo" >/dev/null
  "$bin" --data-dir "$tmp" --log-level warn accounts demo >/dev/null
  local d ins
  for d in "$tmp"/demo/*/; do
    ins=$(basename "$d")
    [[ "$ins" =~ ^[0-9]{15}$ ]] || continue
    "$bin" --data-dir "$tmp" --log-level error accounts relate --login medecin --patient-ins "$ins" --kind attending_gp >/dev/null 2>&1 || true
  done
}
