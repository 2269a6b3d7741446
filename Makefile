# AM — the two commands: `make run` and `make test` (see README.md).
# This Makefile is a thin front for CMake; everything real is in CMakeLists.txt.
BUILD      ?= build
ASAN_BUILD ?= build-asan
CC         := clang
JOBS       ?= 2
CMAKE_FLAGS ?=

.PHONY: all setup build run test test-asan bench fuzz clean

all: build

setup:
	@bash scripts/setup-debian.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=$(CC) $(CMAKE_FLAGS)

build: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@bash scripts/run.sh $(BUILD)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (fuzzers excluded).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=$(CC) -DAM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

bench: build
	@bash scripts/bench.sh $(BUILD)

# Longer fuzzing than the suite's short runs: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 300
fuzz: build
	@for f in $(BUILD)/fuzz_*; do \
	  n=$$(basename $$f); mkdir -p $(BUILD)/fuzz-corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz-corpus/$$n fuzz/corpus/$$n || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
