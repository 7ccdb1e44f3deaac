# Thin wrapper around CMake. Every target installs missing Debian packages first.
#   make              build build/runner and the tests
#   make test         run the whole test suite (ctest)
#   make test-isa     the training, layout and norm-kernel tests again on the CPU code
#                     paths of a machine without AVX-512 (oneDNN/ATen capped at AVX2,
#                     our norm kernels' AVX2 and baseline copies)
#   make check EXP=experiments/session8/bn.yaml   print the summary, enforce the budget
#   make study        the main job: train the seed network with BN, LN and GN, then compare
#   make run EXP=...  train one experiment
#   make bench        runner vs. two PyTorch peers, training images/s, as this CPU runs and
#                     capped at AVX2 (docs/performance.md)
#   make bench-convs  the network's convolutions alone: the floor of a training step
#   make test-asan    the whole suite built with AddressSanitizer + UBSan (build-asan/)
#   make fuzz FUZZ_SECONDS=N     each libFuzzer target for N seconds (build-fuzz/)
#   make reliability  kill tests (runs, sweeps) and the soak test (docs/reliability.md)
#   make build-cxx20  everything compiled as C++20, as newer LibTorch needs (build-cxx20/)
#   make test-debian13  `make test` in a clean Debian 13 root (debootstrap, LibTorch 2.6,
#                     GCC 14) with a fresh clone of HEAD; as root. DEBIAN13_TARGETS=...
#                     runs other targets there (scripts/debian13.sh says the rest)
BUILD ?= build
JOBS ?= $(shell nproc)
EXP ?= experiments/session8/bn.yaml
CMAKE_ARGS ?=
DB ?= results/results.db
STUDY ?= experiments/session8/bn.yaml experiments/session8/ln.yaml experiments/session8/gn.yaml

# Where CIFAR-10 lives: $CIFAR10_ROOT, else data/, else the shared copy beside this checkout.
# Absolute, so that processes started from other folders (sweep points, tests) find it too.
CIFAR10_ROOT ?= $(abspath $(firstword $(wildcard data/cifar-10-batches-bin ../shared/data/cifar-10-batches-bin) data/cifar-10-batches-bin))
export CIFAR10_ROOT

.PHONY: all deps build test test-isa check run study data bench bench-convs bench-ui clean test-asan fuzz reliability build-cxx20 test-debian13 format

all: build

deps:
	@scripts/install_deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Float results (and so the accuracies tests check) differ by CPU code path; CI
# machines have AVX-512, many users' do not. The caps reach the runner processes
# the CLI tests start, too.
ISA_CAPS ?= ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
test-isa: build
	@for isa in avx2 default; do \
	  for filter in "-sf=*test_train.cpp" "-tc=*norm*,*layout*,runner run trains on real data*"; do \
	    echo "test-isa: $(ISA_CAPS) RUNNER_NORM_ISA=$$isa runner_tests $$filter"; \
	    (cd $(BUILD) && env $(ISA_CAPS) RUNNER_NORM_ISA=$$isa tests/runner_tests "$$filter") || exit $$?; \
	  done; \
	done

check: build
	$(BUILD)/runner check $(EXP)

run: build data
	$(BUILD)/runner run $(EXP) --db $(DB)

study: build data
	@for exp in $(STUDY); do $(BUILD)/runner run $$exp --db $(DB) || exit $$?; done
	$(BUILD)/runner compare --by model.norm --db $(DB)

# Downloads CIFAR-10 (MD5-checked) when $(CIFAR10_ROOT) does not exist yet.
data: build
	@test -d "$(CIFAR10_ROOT)" || $(BUILD)/runner data fetch cifar10 "$(patsubst %/,%,$(dir $(CIFAR10_ROOT)))"

# runner ui on a database of 1,000 runs x 20 epochs: ms per page (needs sqlite3 and curl).
bench-ui: build
	@scripts/install_deps.sh bench
	bench/ui.sh $(BUILD)/runner

BENCH_EXPS ?= experiments/session8/bn.yaml experiments/session8/ln.yaml experiments/session8/gn.yaml
bench: build data
	@scripts/install_deps.sh bench
	/usr/bin/python3 bench/bench.py $(BENCH_EXPS) --runner $(BUILD)/runner
	/usr/bin/python3 bench/bench.py $(BENCH_EXPS) --runner $(BUILD)/runner --isa avx2

bench-convs:
	@scripts/install_deps.sh bench
	/usr/bin/python3 bench/conv_roofline.py $(EXP)

# Our code and the tests instrumented; LibTorch and the other libraries are
# Debian's uninstrumented builds (tests/sanitizers/ explains the suppressions).
ASAN_BUILD ?= build-asan
SANITIZE ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
export ASAN_OPTIONS ?= detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/tests/sanitizers/ubsan.supp
test-asan: deps
	@# GCC 12 reports false maybe-uninitialized inside <regex> once sanitizers instrument it.
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="$(SANITIZE) -O1 -Wno-maybe-uninitialized" \
	  -DCMAKE_EXE_LINKER_FLAGS="$(SANITIZE)" $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# LibTorch 2.12 and later need C++20 (CMakeLists.txt picks it for them): keep our code
# compiling as C++20 here too, against Debian's 1.13, with warnings as errors.
build-cxx20: deps
	@cmake -S . -B build-cxx20 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=20 $(CMAKE_ARGS) >/dev/null
	@cmake --build build-cxx20 -j $(JOBS)

DEBIAN13_TARGETS ?= test
test-debian13:
	scripts/debian13.sh $(DEBIAN13_TARGETS)

FUZZ_SECONDS ?= 60
# The house style (.clang-format) on every tracked C++ file; clang-format 14 (Debian 12) wrote the tree.
format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

KILLS ?= 50
SWEEP_KILLS ?= 20
SOAK_SWEEPS ?= 4
SOAK_POINTS ?= 40
reliability: build data
	tests/reliability/kill_runs.sh $(KILLS)
	tests/reliability/kill_sweep.sh $(SWEEP_KILLS)
	tests/reliability/soak.sh $(SOAK_SWEEPS) $(SOAK_POINTS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz build-cxx20
