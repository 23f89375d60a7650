"""Prints the JSON result of load.mjs as lines a person reads."""
import json
import sys

r = json.load(sys.stdin)
print(
    f"{r['connections']} connections, {r['duration_s']} s: {r['requests']} requests, {r['requests_per_s']:.0f} req/s, "
    f"p50 {r['p50_ms']} ms, p97.5 {r['p97_5_ms']} ms, p99 {r['p99_ms']} ms; "
    f"errors {r['errors']}, timeouts {r['timeouts']}, non-2xx {r['non_2xx']}"
)
for kind, k in r["by_kind"].items():
    print(f"  {kind}: {k['requests']} requests, p50 {k['p50']} ms, p95 {k['p95']} ms, p99 {k['p99']} ms")
