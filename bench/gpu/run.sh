#!/usr/bin/env bash
# The one prepared device check of issue 6 point 5, run ON the GPU machine by
# the device tool, from the repository root:
#   bench/gpu/pack.sh                      (here, once: .gpu/debs/)
#   device run: carry [".gpu"], command "bash bench/gpu/run.sh", timeout_s 540
# It builds the runner against the machine's PyTorch LibTorch (CUDA) with the
# carried packages in a prefix, makes a CIFAR-10 stand-in (random pixels: speed
# does not depend on them), then measures, for the seed BN network at batch
# 128: `runner bench` and `runner run` on CUDA, and PyTorch eager on the same
# GPU (bench/gpu/peer_eager.py). Everything it prints lands in $OUT too; the
# configure and build logs go there whole. If the runner does not build, the
# PyTorch baseline is still measured and the script exits 1.
# A dry run here, on the CPU: DEVICE=cpu TORCH_PREFIX=/usr PYTHON=/usr/bin/python3 bench/gpu/run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
step() { echo "== $(date +%T) $*"; }
EXP=experiments/session8/bn.yaml
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}

step machine
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"  # nvcc, for LibTorch's CMake files
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
$PYTHON -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available(),
  "cxx11 abi", torch.compiled_with_cxx11_abi())'
nproc; cmake --version | head -1; ninja --version; c++ --version | head -1

step unpack the carried packages
prefix=/tmp/runner-deps
mkdir -p "$prefix"
for deb in .gpu/debs/*.deb; do
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$prefix"
  else (tmp=$(mktemp -d) && cd "$tmp" && ar x "$OLDPWD/$deb" && tar -xf data.tar.* -C "$prefix" && rm -rf "$tmp"); fi
done
lib="$prefix/usr/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$prefix"
pkg_config=$(command -v pkg-config || echo "$prefix/usr/bin/pkgconf")

step configure and build
# A failed build still leaves the PyTorch baseline below worth the device time.
built=0
torch_prefix=${TORCH_PREFIX:-$($PYTHON -c 'import torch; print(torch.utils.cmake_prefix_path)')}
if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" -DPKG_CONFIG_EXECUTABLE="$pkg_config" \
     -DRUNNER_FETCH=OFF -DRUNNER_PNG=OFF -DRUNNER_UI=OFF -DRUNNER_ONNX=OFF -DRUNNER_WERROR=OFF -DRUNNER_TESTS=OFF > "$OUT/configure.log" 2>&1; then
  tail -5 "$OUT/configure.log"
  ninja -C build-gpu runner > "$OUT/build.log" 2>&1; tail -5 "$OUT/build.log"
  if [ -x build-gpu/runner ]; then built=1
  else grep -m 40 -A 4 "error" "$OUT/build.log"; echo "build failed: build.log has all of it"; fi
else
  tail -60 "$OUT/configure.log"; echo "configure failed: configure.log has all of it"
fi

step data
export CIFAR10_ROOT=$($PYTHON bench/gpu/fake_cifar.py /tmp/cifar-fake)

if [ $built = 1 ]; then
  build-gpu/runner --version
  step runner bench on $DEVICE
  timeout 120 build-gpu/runner bench $EXP --set train.device=$DEVICE --steps 200 --json | tee "$OUT/runner_bench.json"
  timeout 120 build-gpu/runner bench $EXP --set train.device=$DEVICE --steps 50 --profile | tee "$OUT/runner_profile.txt"

  step runner run on $DEVICE, 3 epochs
  timeout 180 build-gpu/runner run $EXP --set train.device=$DEVICE --set train.epochs=3 --db /tmp/gpu.db | tee "$OUT/runner_run.log"
fi

step PyTorch eager on the same GPU, 3 epochs
timeout 180 $PYTHON bench/gpu/peer_eager.py $EXP --root "$CIFAR10_ROOT" --epochs 3 --device $DEVICE | tee "$OUT/peer_eager.json"
step done
[ $built = 1 ] || echo "the runner did not build: only the PyTorch baseline was measured"
exec >&- 2>&-
wait  # for tee to finish run.log
[ $built = 1 ]
