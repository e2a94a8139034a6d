# The two set-up commands of README.md: `make demo` and `make test`.
# Everything they need is installed by scripts/install-deps (Debian packages).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
PYTHON     ?= /usr/bin/python3
CMAKE_GEN   = -G Ninja

.PHONY: all deps build build-asan demo test lint unit-test unit-test-asan integration-test integration-test-asan format clean

all: build

deps:
	scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DPORCUPINE_SANITIZE=ON

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j$(JOBS)

demo: build
	$(BUILD)/porcupine demo

unit-test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

unit-test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

integration-test: build
	PORCUPINE_BIN=$(abspath $(BUILD))/porcupine $(PYTHON) -m pytest -q -p no:cacheprovider tests

lint:
	scripts/check-source

# The same tests against the ASan+UBSan binary: catches use-after-free at shutdown.
integration-test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 PORCUPINE_BIN=$(abspath $(ASAN_BUILD))/porcupine \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests

# Every test: source checks, unit tests and integration tests, each on the normal and the
# ASan+UBSan build.
test: lint unit-test unit-test-asan integration-test integration-test-asan

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
