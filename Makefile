# ecprune — build, test, demo, bench.
#   make            build/libecprune.a, build/libecprune.so, build/ecprune
#   make test       set-up, then the whole suite twice: normal and ASan+UBSan
#   make fuzz       libFuzzer harnesses (clang, ASan+UBSan), FUZZ_S seconds each (60)
#   make test-tsan  the suites that run the thread pools, under ThreadSanitizer
#   make demo       set-up, then train + prune + compare on the bundled default data (mnist)
#   make bench      benchmarks (ratios against OpenBLAS dense / PyTorch CPU in the same run)
#   make results    regenerate docs/RESULTS.md and its plots
#   make python     the Python package in build/python (PYTHONPATH=build/python)
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
SAN     ?=
OPT     ?= -O3 -march=native
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fPIC -g \
              -Iinclude -Isrc -I$(BUILD)/gen -I/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS  = $(CFLAGS_BASE) $(OPT) $(SAN)
LIBS    = -lopenblas -lprotobuf-c -lz -lm -lpthread
SETUP   = scripts/setup.sh

LIB_SRC  = $(sort $(wildcard src/core/*.c src/nn/*.c src/data/*.c src/io/*.c src/prune/*.c src/sparse/*.c))
CLI_SRC  = $(sort $(wildcard src/cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
GEN_C    = $(BUILD)/gen/onnx.pb-c.c
GEN_H    = $(BUILD)/gen/onnx.pb-c.h
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS     = include/ecprune.h $(wildcard src/*.h src/*/*.h) $(GEN_H)

.PHONY: all setup check-deps python test test-unit test-py test-asan test-tsan fuzz fuzz-replay \
        demo bench results install clean
all: check-deps $(BUILD)/libecprune.a $(BUILD)/libecprune.so $(BUILD)/ecprune

# A fresh machine gets one clear line naming what is missing, not a missing-rule error.
check-deps:
	@bash $(SETUP) --check

# ONNX's schema is compiled from Debian's libonnx-dev at build time, never vendored.
$(GEN_C) $(GEN_H): | check-deps
$(GEN_C) $(GEN_H): /usr/include/onnx/onnx.proto
	@mkdir -p $(BUILD)/gen/onnx-src
	cp /usr/include/onnx/onnx.proto $(BUILD)/gen/onnx-src/onnx.proto
	cd $(BUILD)/gen/onnx-src && protoc-c --c_out=.. onnx.proto

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/onnx.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -w -c $< -o $@

$(BUILD)/libecprune.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libecprune.so: $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LIBS)

$(BUILD)/ecprune: $(CLI_OBJ) $(BUILD)/libecprune.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libecprune.a $(LIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libecprune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libecprune.a -lcmocka $(LIBS)

# The Python package: its sources plus the cffi declarations, which are the public header
# run through the preprocessor (python/gen_cdef.py). It loads $(BUILD)/libecprune.so.
PY_SRC = $(sort $(wildcard python/ecprune/*.py))
PY_OUT = $(PY_SRC:python/%=$(BUILD)/python/%) $(BUILD)/python/ecprune/_ecprune.h
python: all $(PY_OUT)

$(BUILD)/python/ecprune/%.py: python/ecprune/%.py
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/python/ecprune/_ecprune.h: include/ecprune.h python/gen_cdef.py
	@mkdir -p $(dir $@)
	python3 python/gen_cdef.py include/ecprune.h $@ $(CC)

setup:
	@bash $(SETUP)

# The unit suites (cmocka), then the Python cross-checks (PyTorch / onnx), then everything
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
# The last line printed is the ASan run's "asan: N passed, N failed".
test: setup
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-py
	@$(MAKE) --no-print-directory test-asan

test-unit: all $(TEST_BIN)
	@bash scripts/run_tests.sh $(BUILD)

test-py: all python
	@bash scripts/run_py_tests.sh $(BUILD)

ASAN_FLAGS = BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
             SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
test-asan:
	@$(MAKE) --no-print-directory $(ASAN_FLAGS) fuzz-replay
	@$(MAKE) --no-print-directory $(ASAN_FLAGS) test-unit

# The fuzz seed corpora through every harness, without libFuzzer (a few seconds).
fuzz-replay: all
	@SAN="$(SAN)" bash fuzz/replay.sh $(BUILD) $(BUILD)/ecprune

# Each libFuzzer harness for FUZZ_S seconds; fails on any crash, leak or sanitizer report.
FUZZ_S ?= 60
fuzz: setup all
	@bash fuzz/run.sh $(BUILD)/ecprune $(FUZZ_S)

# The thread pools (sparse-input training, sparse kernels, statistics) under ThreadSanitizer;
# OpenBLAS, which is not instrumented, runs on one thread.
TSAN_TESTS = build-tsan/tests/test_nn build-tsan/tests/test_sparse build-tsan/tests/test_prune
test-tsan: setup
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -fno-omit-frame-pointer" \
	    SAN="-fsanitize=thread" all $(TSAN_TESTS)
	@OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	    bash scripts/run_tests.sh build-tsan

demo: setup all
	@bash scripts/demo.sh $(BUILD)

bench: setup all
	@bash bench/run.sh $(BUILD)

results: setup all
	@bash scripts/results.sh $(BUILD)

# The Python package goes where this python3 looks under PREFIX (/usr/local/lib/python3.X/
# dist-packages on Debian) and loads PREFIX/lib/libecprune.so from there.
PYDIR ?= $(PREFIX)/lib/$(shell python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')/dist-packages
install: all python
	install -d $(PREFIX)/lib $(PREFIX)/include $(PREFIX)/bin $(PREFIX)/lib/pkgconfig $(PYDIR)/ecprune
	install -m 644 $(BUILD)/python/ecprune/*.py $(BUILD)/python/ecprune/_ecprune.h $(PYDIR)/ecprune/
	install -m 644 $(BUILD)/libecprune.a $(PREFIX)/lib/
	install -m 755 $(BUILD)/libecprune.so $(PREFIX)/lib/
	install -m 644 include/ecprune.h $(PREFIX)/include/
	install -m 755 $(BUILD)/ecprune $(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' scripts/ecprune.pc.in \
	    > $(PREFIX)/lib/pkgconfig/ecprune.pc

clean:
	rm -rf build build-asan build-fuzz build-tsan
