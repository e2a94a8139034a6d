# The two set-up commands of README.md: `make demo` and `make test`.
# Everything they need is installed by scripts/install-deps (Debian packages).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
JOBS       ?= 2
PYTHON     ?= /usr/bin/python3
CMAKE_GEN   = -G Ninja

.PHONY: all deps build build-asan demo test lint unit-test unit-test-asan unit-test-tsan integration-test integration-test-asan format clean tls-audit

all: build

deps:
	scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPORCUPINE_SANITIZE=ON

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

$(TSAN_BUILD)/build.ninja:
	cmake -S . -B $(TSAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORCUPINE_TSAN=ON

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j$(JOBS)

demo: build
	$(BUILD)/porcupine demo

unit-test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

unit-test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

# The fault test runs once per seed of DEFAULT_SEEDS in tests/test_fault.py (seeds that once
# failed, ~150 s each); FAULT_SEEDS=s1,s2,... runs other seeds ("random" for a fresh one).
integration-test: build
	PORCUPINE_BIN=$(abspath $(BUILD))/porcupine PORCUPINE_FAULT_SEEDS=$(FAULT_SEEDS) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests

# ThreadSanitizer over the unit tests of the code that shares state between
# threads (docs/threading.md). Not the store's own tests: RocksDB (built without
# TSan) hands write batches between threads with synchronization TSan cannot
# see. Not the simulation: it is single-threaded by construction.
TSAN_TESTS = core cluster replication manager mail net node
unit-test-tsan: deps $(TSAN_BUILD)/build.ninja
	ninja -C $(TSAN_BUILD) -j$(JOBS) $(foreach t,$(TSAN_TESTS),porcupine_$(t)_test)
	set -e; for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(abspath scripts/tsan.supp)" \
	    $(TSAN_BUILD)/porcupine_$${t}_test \
	    --gtest_brief=1; \
	done

lint:
	scripts/check-source

# The same tests against the ASan+UBSan binary: catches use-after-free at shutdown and
# in the cluster paths. The slow multi-node scenarios (fault test, partitions, joins) run
# on the normal build only, to keep `make test` well inside CI's time.
integration-test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 PORCUPINE_BIN=$(abspath $(ASAN_BUILD))/porcupine \
	  $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" tests

# Every test: source checks, unit tests and integration tests, each on the normal and the
# ASan+UBSan build, the threaded unit tests under ThreadSanitizer, and the TLS audit.
test: lint unit-test unit-test-asan unit-test-tsan integration-test integration-test-asan tls-audit

# testssl.sh against a local node's SMTP STARTTLS, IMAPS and POP3S with the default [tls]
# settings; fails on any HIGH or CRITICAL finding (docs/security.md). About 2 minutes.
tls-audit: build
	PORCUPINE_BIN=$(abspath $(BUILD))/porcupine $(PYTHON) scripts/tls-audit

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# ---- fuzzing (docs/fuzzing.md). `make test` replays every fuzz target's corpus as a
# unit test (fuzz_replay.*, on the normal and the ASan build). `make fuzz` builds the
# libFuzzer targets with clang (ASan+UBSan, coverage) in FUZZ_BUILD and replays the
# corpora there; `make fuzz-run` then runs each target for FUZZ_SECONDS (default 60),
# one after the other, niced; FUZZ_TARGETS=name... picks targets.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
.PHONY: fuzz fuzz-run

$(FUZZ_BUILD)/build.ninja:
	@command -v clang++ >/dev/null || { echo "make fuzz needs clang++ (apt-get install clang)"; exit 1; }
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DPORCUPINE_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) -j$(JOBS) fuzz
	ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure

fuzz-run: fuzz
	$(PYTHON) scripts/fuzz-run --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- bench/: the paper's experiments (bench/README.md). Each target installs the
# experiments' Debian packages (bench/install-deps), builds the binary only if it is
# missing (run `make build` first to test new code), then runs one experiment.
# BENCH_ARGS is passed to the script, e.g. `make bench-exp2 BENCH_ARGS=--quick`.
BENCH_ARGS ?=
BENCH_RUN = PORCUPINE_BIN=$(abspath $(BUILD))/porcupine $(PYTHON)

.PHONY: bench-deps bench-bin bench-exp1 bench-exp2 bench-exp3 bench-exp4 bench-exp5 bench-quick

bench-deps:
	bench/install-deps

bench-bin:
	@test -x $(BUILD)/porcupine || $(MAKE) build

bench-exp1: bench-deps bench-bin
	$(BENCH_RUN) bench/exp1_vs_postfix.py $(BENCH_ARGS)

bench-exp2: bench-deps bench-bin
	$(BENCH_RUN) bench/exp2_scaling.py $(BENCH_ARGS)

bench-exp3: bench-deps bench-bin
	$(BENCH_RUN) bench/exp3_replication.py $(BENCH_ARGS)

bench-exp4: bench-deps bench-bin
	$(BENCH_RUN) bench/exp4_failure.py $(BENCH_ARGS)

bench-exp5: bench-deps bench-bin
	$(BENCH_RUN) bench/exp5_skew.py $(BENCH_ARGS)

# Every experiment's short version, one after the other (a few minutes in all).
bench-quick: bench-deps bench-bin
	$(BENCH_RUN) bench/exp1_vs_postfix.py --quick
	$(BENCH_RUN) bench/exp2_scaling.py --quick
	$(BENCH_RUN) bench/exp3_replication.py --quick
	$(BENCH_RUN) bench/exp4_failure.py --quick
	$(BENCH_RUN) bench/exp5_skew.py --quick

# ---- the fault test (tests/test_fault.py): faults under load, then the checker's counts.
# FAULT_SECONDS of nemesis (default 600), FAULT_SEED to repeat a run (default random; every
# run prints its seed). Root only: the nodes run in network namespaces.
# `make soak` runs it with random seeds (FAULT_SECONDS each, default 120) for SOAK_SECONDS
# (default 3600), printing each seed and result, and stops at the first failure with the
# checker's report and the kept node directories (tests/soak.py).
SOAK_SECONDS ?= 3600
.PHONY: fault-test soak sim-soak

fault-test: build
	PORCUPINE_BIN=$(abspath $(BUILD))/porcupine PORCUPINE_FAULT_SECONDS=$(or $(FAULT_SECONDS),600) \
	  PORCUPINE_FAULT_SEED=$(or $(FAULT_SEED),random) $(PYTHON) -m pytest -q -s -p no:cacheprovider \
	  tests/test_fault.py

# The simulation over 10,000 random seeds (SIM_SEEDS=N for another count).
sim-soak: build
	scripts/sim-soak $(BUILD) $(or $(SIM_SEEDS),10000)

soak: build
	PORCUPINE_BIN=$(abspath $(BUILD))/porcupine $(PYTHON) tests/soak.py --seconds $(SOAK_SECONDS) \
	  --fault-seconds $(or $(FAULT_SECONDS),120)
