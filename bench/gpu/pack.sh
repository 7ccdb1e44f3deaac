#!/usr/bin/env bash
# Run here, before a GPU session: puts the Debian packages the runner's minimal
# build needs (-DRUNNER_FETCH=OFF -DRUNNER_PNG=OFF) into .gpu/debs/, ignored by
# git, for the device tool to carry (`carry: [".gpu"]`). The GPU machine has
# LibTorch (PyTorch's), CMake, ninja and a compiler, nothing else of ours, and
# no network. About 5 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(
  libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libsqlitecpp-dev libsqlite3-dev libsqlite3-0
  libcli11-dev doctest-dev zlib1g-dev zlib1g libpng-dev libpng16-16 libturbojpeg0-dev libturbojpeg0
  pkgconf pkgconf-bin libpkgconf3
)
rm -rf .gpu/debs && mkdir -p .gpu/debs
(cd .gpu/debs && apt-get download "${packages[@]}" >/dev/null 2>&1 &&
  for f in *%3a*; do mv "$f" "${f//%3a/-}"; done)  # epochs' ':' is URL-encoded; plain names travel safer
echo "bench/gpu/pack.sh: $(ls .gpu/debs | wc -l) packages, $(du -sh .gpu/debs | cut -f1) in .gpu/debs"
