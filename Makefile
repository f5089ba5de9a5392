# ecprune — build, test, demo, bench.
#   make            build/libecprune.a, build/libecprune.so, build/ecprune
#   make test       set-up, then the whole suite twice: normal and ASan+UBSan
#   make fuzz       libFuzzer harnesses (clang, ASan+UBSan), FUZZ_S seconds each (60)
#   make test-tsan  the suites that run the thread pools, under ThreadSanitizer
#   make demo       set-up, then train + prune + compare on the bundled default data (mnist)
#   make bench      benchmarks (ratios against OpenBLAS dense / PyTorch CPU in the same run)
#   make results    regenerate docs/RESULTS.md and its plots
#   make python     the Python package in build/python (PYTHONPATH=build/python)
#   make install PREFIX=/usr/local [DESTDIR=...]   portable build (no -march=native)
#   make uninstall PREFIX=/usr/local [DESTDIR=...]

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
# `make install` builds a portable library (no -march=native) in its own directory; the local
# build and the tests use every instruction of this machine.
ifneq ($(filter install,$(MAKECMDGOALS)),)
BUILD   ?= build-install
OPT     ?= -O3
endif
BUILD   ?= build
SAN     ?=
OPT     ?= -O3 -march=native
# The version is defined once, in include/ecprune.h.
VERSION := $(shell sed -n 's/^\#define ECP_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' \
             include/ecprune.h | paste -sd. -)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
SO_REAL  = libecprune.so.$(VERSION)
SO_NAME  = libecprune.so.$(MAJOR)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || \
                 echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
WARN    = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wmissing-prototypes -Wstrict-prototypes
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -g -MMD -MP \
              -Iinclude -Isrc -I$(BUILD)/gen $(BLAS_CFLAGS)
CFLAGS  = $(CFLAGS_BASE) $(OPT) $(SAN)
# Open MPI (Debian's libopenmpi-dev): only src/core/dist.c sees its header; everything links it.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
LIBS    = -lopenblas -lprotobuf-c -lz -lm -lpthread $(MPI_LIBS)
SETUP   = scripts/setup.sh
HEADERS = include/ecprune.h include/ecprune_tools.h

LIB_SRC  = $(sort $(wildcard src/core/*.c src/nn/*.c src/data/*.c src/io/*.c src/prune/*.c src/sparse/*.c))
CLI_SRC  = $(sort $(wildcard src/cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
GEN_C    = $(BUILD)/gen/onnx.pb-c.c
GEN_H    = $(BUILD)/gen/onnx.pb-c.h
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
STAGE    = $(abspath $(BUILD))/stage

.PHONY: all setup check-deps python test test-unit test-mpi test-py test-asan test-tsan test-examples fuzz \
        fuzz-replay demo bench results install install-files uninstall clean
all: check-deps $(BUILD)/libecprune.a $(BUILD)/libecprune.so $(BUILD)/ecprune

# A fresh machine gets one clear line naming what is missing, not a missing-rule error.
check-deps:
	@bash $(SETUP) --check

# ONNX's schema is compiled from Debian's libonnx-dev at build time, never vendored.
$(GEN_C) $(GEN_H): | check-deps
# One run of protoc-c makes both files (a grouped target: -j must not run it twice).
$(GEN_C) $(GEN_H) &: /usr/include/onnx/onnx.proto
	@mkdir -p $(BUILD)/gen/onnx-src
	cp /usr/include/onnx/onnx.proto $(BUILD)/gen/onnx-src/onnx.proto
	cd $(BUILD)/gen/onnx-src && protoc-c --c_out=.. onnx.proto

# Header dependencies come from the compiler (-MMD -MP); the generated ONNX header must exist
# before anything that may include it is compiled.
$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/src/core/dist.o: CFLAGS += $(MPI_CFLAGS)

$(BUILD)/obj/gen/onnx.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -w -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)

$(BUILD)/libecprune.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library exports the public API only (the functions declared in the installed
# headers), not the internals nor protobuf-c's generated onnx__* code.
$(BUILD)/ecprune.map: $(HEADERS) scripts/exports.sh
	@mkdir -p $(dir $@)
	bash scripts/exports.sh $(CC) $(HEADERS) > $@

$(BUILD)/$(SO_REAL): $(LIB_OBJ) $(BUILD)/ecprune.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script=$(BUILD)/ecprune.map \
	    -o $@ $(LIB_OBJ) $(LIBS)

$(BUILD)/libecprune.so: $(BUILD)/$(SO_REAL)
	ln -sf $(SO_REAL) $(BUILD)/$(SO_NAME)
	ln -sf $(SO_REAL) $@

$(BUILD)/ecprune: $(CLI_OBJ) $(BUILD)/libecprune.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libecprune.a $(LIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h tests/cliutil.h $(BUILD)/libecprune.a
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

# The unit suites (cmocka), prune across 2 MPI ranks, then the Python cross-checks (PyTorch / onnx), then everything
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
# The last line printed is the ASan run's "asan: N passed, N failed".
test: setup
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-mpi
	@$(MAKE) --no-print-directory test-examples
	@$(MAKE) --no-print-directory test-py
	@$(MAKE) --no-print-directory test-asan

test-unit: all $(TEST_BIN)
	@bash scripts/run_tests.sh $(BUILD)

# prune under `mpirun -np 2` against one process, and a failure on one rank (Open MPI).
test-mpi: all
	@bash scripts/run_mpi_tests.sh $(BUILD)

# The programs in examples/ are built as an embedder builds them: against an installed copy
# (staged under BUILD/stage) found through pkg-config, then run.
test-examples: all
	@$(MAKE) --no-print-directory install-files BUILD=$(BUILD) DESTDIR= PREFIX=$(STAGE) >/dev/null
	@bash scripts/run_examples.sh $(STAGE) $(BUILD)/examples

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

# The thread pool and its users (sparse-input training, sparse kernels, statistics) under TSan;
# OpenBLAS, which is not instrumented, runs on one thread.
TSAN_TESTS = build-tsan/tests/test_core build-tsan/tests/test_nn build-tsan/tests/test_sparse build-tsan/tests/test_prune
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
	@$(MAKE) --no-print-directory install-files BUILD=$(BUILD)
	install -d $(DESTDIR)$(PYDIR)/ecprune
	install -m 644 $(BUILD)/python/ecprune/*.py $(BUILD)/python/ecprune/_ecprune.h \
	    $(DESTDIR)$(PYDIR)/ecprune/

install-files:
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libecprune.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libecprune.so
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/ecprune $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' scripts/ecprune.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ecprune.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libecprune.a $(DESTDIR)$(PREFIX)/lib/$(SO_REAL) \
	    $(DESTDIR)$(PREFIX)/lib/$(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libecprune.so \
	    $(DESTDIR)$(PREFIX)/include/ecprune.h $(DESTDIR)$(PREFIX)/include/ecprune_tools.h \
	    $(DESTDIR)$(PREFIX)/bin/ecprune $(DESTDIR)$(PREFIX)/lib/pkgconfig/ecprune.pc
	rm -rf $(DESTDIR)$(PYDIR)/ecprune

clean:
	rm -rf build build-asan build-install build-fuzz build-tsan
