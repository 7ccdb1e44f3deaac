# Thin wrapper around CMake. Every target installs missing Debian packages first.
#   make              build build/runner and the tests
#   make test         run the whole test suite (ctest)
#   make check EXP=experiments/session8/bn.yaml   print the summary, enforce the budget
#   make study        the main job: train BN, LN and GN (issue: train and record)
BUILD ?= build
JOBS ?= $(shell nproc)
EXP ?= experiments/session8/bn.yaml
CMAKE_ARGS ?=

# Where CIFAR-10 lives: $CIFAR10_ROOT, else data/, else the shared copy beside this checkout.
CIFAR10_ROOT ?= $(firstword $(wildcard data/cifar-10-batches-bin ../shared/data/cifar-10-batches-bin) data/cifar-10-batches-bin)
export CIFAR10_ROOT

.PHONY: all deps build test check clean

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

clean:
	rm -rf $(BUILD)
