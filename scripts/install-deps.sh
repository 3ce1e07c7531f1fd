#!/usr/bin/env bash
# Installs every Debian package tune needs to build, test and run. Idempotent: installs only what
# is missing and prints nothing when everything is present. Runs apt-get as root, or via sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache git pkg-config clang-format
  libtorch-dev
  python3-torch python3-sentencepiece  # the independent reference the model tests compare against
  libopenblas0-pthread  # Debian's libtorch calls the system BLAS; the reference BLAS is ~30x slower
  librocksdb-dev
  libcivetweb-dev civetweb  # civetweb's CMake config refers to the civetweb binary
  libtomlplusplus-dev libsentencepiece-dev
  libpcre2-dev libutf8proc-dev  # tokenizer.json: split regexes, Unicode normalisation
  python3-regex  # tests: the tokenizer.json files they make
  python3-jinja2  # tests: chat templates rendered as transformers renders them
  libboost-dev libboost-filesystem-dev
  libgtest-dev libgmock-dev
  libcli11-dev nlohmann-json3-dev libssl-dev
  libcurl4-openssl-dev  # a registry server's client (https)
  openssl  # tests: the certificates of a TLS registry server
  chromium  # tests: the web view in a real browser, driven by playwright-core (tests/tools/js)
  slurm-wlm munge  # tests (ctest -L slurm): sweeps through a one-host Slurm, scripts/slurm-cluster.sh
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$package")
done
# The tests' JavaScript references run on node; a node from elsewhere (nodesource) brings npm.
command -v npm >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq >/dev/null
  "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The JavaScript references the tests compare against (tests/tools/js), pinned by its lock file.
js=$(cd "$(dirname "$0")/../tests/tools/js" && pwd)
if [ ! -f "$js/node_modules/.package-lock.json" ] ||
   [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  echo "installing the tests' JavaScript references in $js" >&2
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
