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
)

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
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
