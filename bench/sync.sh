#!/usr/bin/env bash
# DMP sync throughput: the generated ten-year patient with the most reports (haemodialysis, a
# check every week: 500+ reports) served by `bioviewer dmp-sim` over
# loopback HTTP, synced into an empty SQLite store by `bioviewer sync` (ITI-18, then ITI-43 in
# MTOM, 10 documents per request, 4 in flight, every document stored through the import path).
# Usage: bench/sync.sh   (uses target/release/bioviewer)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
folder=$largest
ins=$largest_ins
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --log-level warn dmp-sim --corpus "$folder" --listen "127.0.0.1:$port" >/dev/null &
pid=$!
for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
BIOVIEWER_NEW_PASSWORD="benchmark-password" "$bin" --data-dir "$tmp/store" --log-level warn accounts add --login bench \
  --role professional --name "Dr BENCH" --rpps "1.2.250.1.71.4.2.1^810000000099" --profession "Médecin" >/dev/null
start=$(date +%s.%N)
report=$("$bin" --data-dir "$tmp/store" --log-level warn sync --patient "$ins" --ins-oid 1.2.250.1.213.1.4.10 --as bench \
  --dmp-endpoint "http://127.0.0.1:$port/dmp" \
  --dmp-structure-key server/tests/data/vihf-test-structure.key.pem --dmp-structure-cert server/tests/data/vihf-test-structure.cert.pem 2>/dev/null)
end=$(date +%s.%N)
python3 - "$report" "$start" "$end" "$(du -sb "$folder" | cut -f1)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); seconds = float(sys.argv[3]) - float(sys.argv[2]); size = int(sys.argv[4])
print(f"found {r['found']} entries ({r['deprecated']} replaced), stored {r['stored']}, failed {len(r['failed'])}")
print(f"sync: {seconds:.2f} s, {r['stored'] / seconds:.0f} documents/s, {size / seconds / 1e6:.1f} MB/s of CDA")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
