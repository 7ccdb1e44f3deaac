# Thin wrapper around CMake. Every target installs missing Debian packages first.
#   make              build build/runner and the tests
#   make test         run the whole test suite (ctest)
#   make check EXP=experiments/session8/bn.yaml   print the summary, enforce the budget
#   make study        the main job: train the seed network with BN, LN and GN, then compare
#   make run EXP=...  train one experiment
#   make bench        runner vs. two PyTorch peers, training images/s (docs/performance.md)
BUILD ?= build
JOBS ?= $(shell nproc)
EXP ?= experiments/session8/bn.yaml
CMAKE_ARGS ?=
DB ?= results/results.db
STUDY ?= experiments/session8/bn.yaml experiments/session8/ln.yaml experiments/session8/gn.yaml

# Where CIFAR-10 lives: $CIFAR10_ROOT, else data/, else the shared copy beside this checkout.
CIFAR10_ROOT ?= $(firstword $(wildcard data/cifar-10-batches-bin ../shared/data/cifar-10-batches-bin) data/cifar-10-batches-bin)
export CIFAR10_ROOT

.PHONY: all deps build test check run study data bench clean

all: build

deps:
	@scripts/install_deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

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

BENCH_EXPS ?= experiments/session8/bn.yaml experiments/session8/ln.yaml experiments/session8/gn.yaml
bench: build data
	@scripts/install_deps.sh bench
	/usr/bin/python3 bench/bench.py $(BENCH_EXPS) --runner $(BUILD)/runner

clean:
	rm -rf $(BUILD)
