#!/usr/bin/env bash
# Registry throughput: register and fetch of adapters of 1 MB and 64 MB (MB/s) against `cp -r` of
# the same bytes, and `cp -r` followed by `sync` of the copies (register fsyncs everything it
# stores; cp does not), in the same run, ROUNDS rounds each; then `ls` over VERSIONS versions (ms).
# Prints each round and the medians. Work files go to a temp folder on the disk of $TMPDIR.
#
#   bench/registry.sh BUILD_DIR [ROUNDS] [VERSIONS]
#   e.g. bench/registry.sh build/release 5 10000
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-5}
versions=${3:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$build_dir/bin/bench_registry" "$work" --rounds "$rounds" --versions "$versions" | tee "$work/lines"
echo
echo "medians:"
sed -E 's/^\{"what": "([^"]+)", "seconds": ([0-9.e+-]+)(, "mb_per_s": ([0-9.]+))?\}$/\1\t\2\t\4/' \
    "$work/lines" |
  awk -F'\t' '{ s[$1] = s[$1] " " $2; m[$1] = m[$1] " " $3; if (!($1 in order)) { order[$1] = n++; names[n - 1] = $1 } }
    function median(list,   v, k, i, j, t) {
      k = split(list, v, " ")
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END {
      for (i = 0; i < n; i++) {
        name = names[i]
        if (m[name] ~ /[0-9]/) printf "  %-28s %9.1f MB/s  (%.1f ms)\n", name, median(m[name]), 1000 * median(s[name])
        else printf "  %-28s %9.2f ms\n", name, 1000 * median(s[name])
      }
    }'
