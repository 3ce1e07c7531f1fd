#!/usr/bin/env bash
# Registry throughput: register and fetch of adapters of 1 MB and 64 MB (MB/s) against `cp -r` of
# the same bytes, and `cp -r` followed by `sync` of the copies (register fsyncs everything it
# stores; cp does not), ROUNDS rounds each; then VERSIONS registrations, `ls` over them (ms), and
# a fetch of a small version right after a write (a read view opened anew).
#
# With PEER_BUILD_DIR (another build's folder, e.g. of the commit before a change), both builds
# run in this one command, alternating round by round, and the medians are printed side by side
# with their ratio: what a change costs.
#
#   bench/registry.sh BUILD_DIR [ROUNDS] [VERSIONS] [PEER_BUILD_DIR]
#   e.g. bench/registry.sh build/release 5 2000 ../before/build/release
# Work files go to a temp folder on the disk of $TMPDIR.
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-5}
versions=${3:-10000}
peer_dir=${4:+$(realpath "$4")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run LABEL BIN_DIR ARGS...: bench_registry's JSON lines, each tagged with LABEL.
run() {
  local label=$1 bin=$2
  shift 2
  "$bin/bin/bench_registry" "$work/$label" "$@" | sed "s/^{/{\"build\": \"$label\", /" |
    tee -a "$work/lines"
  rm -rf "${work:?}/$label"
}

builds=("this:$build_dir")
[ -n "$peer_dir" ] && builds=("peer:$peer_dir" "this:$build_dir")
for round in $(seq "$rounds"); do
  # Alternating which build goes first, so neither always meets a warmer cache.
  order=("${builds[@]}")
  [ $((round % 2)) -eq 0 ] && [ ${#builds[@]} -eq 2 ] && order=("${builds[1]}" "${builds[0]}")
  for entry in "${order[@]}"; do run "${entry%%:*}" "${entry#*:}" --rounds 1 --versions 0; done
done
if [ "$versions" -gt 0 ]; then
  for entry in "${builds[@]}"; do
    run "${entry%%:*}" "${entry#*:}" --rounds "$rounds" --versions "$versions" --sizes-mb ""
  done
fi

echo
echo "medians (this build${peer_dir:+ | peer | this / peer}):"
sed -E 's/^\{"build": "([a-z]+)", "what": "([^"]+)", "seconds": ([0-9.e+-]+)(, "mb_per_s": ([0-9.]+))?\}$/\1\t\2\t\3\t\5/' \
    "$work/lines" |
  awk -F'\t' '
    { key = $1 SUBSEP $2; s[key] = s[key] " " $3; m[key] = m[key] " " $4
      if (!($2 in seen)) { seen[$2] = 1; names[n++] = $2 } }
    function median(list,   v, k, i, j, t) {
      k = split(list, v, " ")
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    function figure(build, name,   key) {
      key = build SUBSEP name
      if (!(key in s)) return ""
      if (m[key] ~ /[0-9]/) return sprintf("%9.1f MB/s (%7.1f ms)", median(m[key]), 1000 * median(s[key]))
      return sprintf("%9.2f ms", 1000 * median(s[key]))
    }
    END {
      for (i = 0; i < n; i++) {
        name = names[i]
        line = sprintf("  %-44s %s", name, figure("this", name))
        if (("peer" SUBSEP name) in s) {
          line = line sprintf("  | %s  | %.2fx time", figure("peer", name),
                              median(s["this" SUBSEP name]) / median(s["peer" SUBSEP name]))
        }
        print line
      }
    }'
