#!/usr/bin/env bash
# tune serve under load, with wrk on the loopback address: the version list (a page of 50) of a
# registry of VERSIONS versions, and the download of a 16 MB adapter file, CONNECTIONS at once for
# SECONDS each. Prints wrk's latency distribution (p50, p90, p99) and requests per second. Then
# IDLE connections that send nothing are opened and held (at most 900, for at most 20 s), and a
# normal request's time is measured while they are open, ten times (the seconds of each).
# Needs wrk (apt-get install wrk). The registries come from bench_registry, in a temp folder.
#
#   bench/web.sh BUILD_DIR [VERSIONS] [SECONDS] [CONNECTIONS] [IDLE]
#   e.g. bench/web.sh build/release 10000 10 8 300
set -euo pipefail
build_dir=$(realpath "$1")
versions=${2:-10000}
seconds=${3:-10}
connections=${4:-8}
idle=${5:-300}
[ "$idle" -le 900 ] || { echo "error: at most 900 idle connections" >&2; exit 1; }
command -v wrk >/dev/null || { echo "error: wrk is not installed; apt-get install wrk" >&2; exit 1; }
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

"$build_dir/bin/bench_registry" "$work" --rounds 1 --versions "$versions" --sizes-mb 16 >/dev/null

# Starts tune serve on REGISTRY and sets $url.
serve() {
  [ -n "$server" ] && kill "$server" && wait "$server" 2>/dev/null || true
  echo bench-token >"$work/token"
  "$build_dir/bin/tune" serve --registry "$1" --port 0 --token-file "$work/token" \
    >"$work/serve.out" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    url=$(grep -o 'http://[0-9.:]*' "$work/serve.out" || true)
    [ -n "$url" ] && return
    sleep 0.1
  done
  echo "error: tune serve did not start: $(cat "$work/serve.out")" >&2
  exit 1
}

serve "$work/many/registry"
echo "== version list: GET /api/versions?limit=50 of $versions versions"
auth="Authorization: Bearer bench-token"
curl -s -H "$auth" "$url/api/versions?limit=50" >/dev/null  # the first request after a write parses
wrk -t2 -c"$connections" -d"${seconds}s" -H "$auth" --latency "$url/api/versions?limit=50"

serve "$work/size-16/registry"
echo "== 16 MB download: GET /api/adapters/bench/versions/1/files/adapter_model.safetensors"
wrk -t2 -c"$connections" -d"${seconds}s" -H "$auth" --latency \
  "$url/api/adapters/bench/versions/1/files/adapter_model.safetensors"

echo "== GET /api/health while $idle connections that send nothing are open"
port=${url##*:}
ulimit -n 4096
fds=()
for _ in $(seq "$idle"); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  fds+=("$fd")
done
for _ in $(seq 10); do
  curl -s -o /dev/null -H "$auth" --max-time 20 -w '  %{http_code} in %{time_total} s\n' \
    "$url/api/health"
done
for fd in "${fds[@]}"; do exec {fd}>&-; done
