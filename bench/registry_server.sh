#!/usr/bin/env bash
# A registry server against the folder it serves, in one command: tune serve on the loopback
# address over a registry of VERSIONS versions (bench_registry makes it), then
# bench_registry_server: a 64 MiB adapter registered in a folder and through the server,
# alternating, ROUNDS rounds; the object bytes a second registration of the same adapter sends;
# 16 runs logging POINTS points each at once, as fast as they can, then for five seconds at 20,000
# points a second in all, while a page of the version list is asked for again and again (its p50,
# p90, p99). Prints each line and the medians.
#
#   bench/registry_server.sh BUILD_DIR [ROUNDS] [VERSIONS] [POINTS]
#   e.g. bench/registry_server.sh build/release 5 10000 20000
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-5}
versions=${3:-10000}
points=${4:-20000}
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

"$build_dir/bin/bench_registry" "$work" --rounds 0 --versions "$versions" --sizes-mb "" >/dev/null
echo "bench-token" > "$work/token"
"$build_dir/bin/tune-serve" --registry "$work/many/registry" --port 0 \
  --token-file "$work/token" >"$work/serve.out" 2>&1 &
server=$!
url=""
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.out" || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "error: tune serve did not start: $(cat "$work/serve.out")" >&2; exit 1; }

"$build_dir/bin/bench_registry_server" "$url" bench-token "$work" --rounds "$rounds" \
  --points "$points" | tee "$work/lines"
echo
echo "medians:"
python3 - "$work/lines" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    rows.setdefault(row.pop("what"), []).append(row)
for what, found in rows.items():
    keys = found[0].keys()
    print("  %-50s %s" % (what, ", ".join(
        "%s %.4g" % (k, statistics.median(r[k] for r in found)) for k in keys)))
server_s = statistics.median(r["seconds"] for r in rows["register 64MB through the server"])
folder_s = statistics.median(r["seconds"] for r in rows["register 64MB in a folder"])
print("  through the server: %.2fx the folder's throughput" % (folder_s / server_s))
PY
