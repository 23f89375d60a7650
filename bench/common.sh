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
