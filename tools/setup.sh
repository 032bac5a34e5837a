#!/usr/bin/env bash
# Installs the Debian 12 packages hfevents builds with, when missing (run as root on a fresh machine).
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libboost-dev libconcurrentqueue-dev libflatbuffers-dev flatbuffers-compiler
          libmimalloc-dev libbenchmark-dev libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev gnuplot-nox python3
          librdkafka-dev kcat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
