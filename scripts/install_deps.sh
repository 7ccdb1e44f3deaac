#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only when missing.
# Run as root, or as a user with sudo. Idempotent and quiet when all is there.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libtorch-dev          # LibTorch 1.13 (CPU); point CMAKE_PREFIX_PATH elsewhere for CUDA builds
  libyaml-cpp-dev nlohmann-json3-dev libsqlitecpp-dev libsqlite3-dev sqlite3
  libcli11-dev doctest-dev libboost-math-dev libcpp-httplib-dev zlib1g-dev libpng-dev libturbojpeg0-dev libcurl4-openssl-dev libarchive-dev libssl-dev
  librsvg2-dev libpango1.0-dev libfontconfig-dev  # render the report's SVG pictures to PNG (Pango/fontconfig: font caches released)
  libonnx-dev           # runner export: ONNX protobuf classes, checker, shape inference
  python3-torch python3-numpy  # the export tests run the PyTorch export with Debian's PyTorch
)
# The export tests run ONNX models with onnxruntime from npm (package.json). A node
# that is already there (e.g. from NodeSource, which bundles npm) is kept: Debian's
# npm package would conflict with it.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

# `install_deps.sh bench` also installs the Python peers of `make bench`.
if [ "${1:-}" = bench ]; then packages+=(python3-torch python3-torchvision python3-yaml python3-numpy curl); fi
# Package names that differ between releases: Debian 12 (bookworm) and 13 (trixie).
codename=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
case "$codename" in
  bookworm) clang_rt=libclang-rt-14-dev ;;   # clang 14
  *) clang_rt=libclang-rt-dev ;;             # trixie on: the default clang's (19) runtimes
esac
# `install_deps.sh fuzz` adds clang and its libFuzzer/sanitizer runtimes.
if [ "${1:-}" = fuzz ]; then packages+=(clang "$clang_rt"); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node, pinned in package-lock.json. It carries its CPU engine inside the
# package; ONNXRUNTIME_NODE_INSTALL=skip stops its post-install step from trying to
# download GPU libraries (which fails offline).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$here/node_modules/onnxruntime-node/package.json" ] ||
   ! cmp -s "$here/package-lock.json" "$here/node_modules/.package-lock.json.runner" 2>/dev/null; then
  echo "install_deps: npm ci (onnxruntime-node, for the export tests)" >&2
  (cd "$here" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    { echo "install_deps: npm ci failed; the export tests need onnxruntime-node (package.json)" >&2; exit 1; }
  cp "$here/package-lock.json" "$here/node_modules/.package-lock.json.runner"
fi
