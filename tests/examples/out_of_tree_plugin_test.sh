#!/usr/bin/env bash
# Installs the built tune into a temporary prefix, builds examples/plugins/contains_match against
# that installation the way a plugin author would, and checks that tune loads it through
# TUNE_PLUGIN_PATH next to the built-in plugins.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples/plugins/contains_match" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; fail "configuring the example against the installed SDK"; }
cmake --build "$work/build" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; fail "building the example plugin"; }
grep -q "warning" "$work/build.log" && { cat "$work/build.log"; fail "the example built with warnings"; }

tune="$work/prefix/bin/tune"
unset TUNE_PLUGIN_PATH
listing=$("$tune" plugins) || fail "installed tune plugins exited $?"
grep -Eq "^metric +exact_match +1\.0\.0 +$work/prefix/lib/tune/plugins/" <<<"$listing" \
  || fail "installed tune does not find its built-in plugins: $listing"

listing=$(TUNE_PLUGIN_PATH="$work/build" "$tune" plugins 2>"$work/stderr") \
  || { cat "$work/stderr"; fail "tune plugins refused the out-of-tree plugin"; }
grep -Eq "^metric +contains_match +1\.0\.0 +$work/build/libtune_metric_contains_match\.so$" <<<"$listing" \
  || fail "contains_match not listed: $listing"
[ -s "$work/stderr" ] && { cat "$work/stderr"; fail "unexpected errors"; }

json=$(TUNE_PLUGIN_PATH="$work/build" "$tune" plugins --json)
grep -q '"name": "contains_match"' <<<"$json" || fail "contains_match missing from --json"
grep -q '"name": "strip_articles"' <<<"$json" || fail "contains_match options missing from --json"
echo "out-of-tree plugin built against the installed SDK and loaded"
