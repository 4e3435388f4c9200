# pycache — build, test, install.
#
#   make                      build/pycache, build/libpycache.a, build/libpycache.so
#   make check                unit tests (C, cmocka) then integration tests (pytest)
#   make SAN=1 check          the same under AddressSanitizer + UBSan (own build dir)
#   make PORTABLE=1 check     the portable build: POSIX.1-2008 only, every Linux
#                             fast path off (own build dir, build-portable)
#   make WERROR=1             warnings are errors (CI)
#   make install PREFIX=/usr/local DESTDIR=
#   make man                  $(BUILD)/pycache.1 from docs/pycache.1.scd (scdoc)
#   make bench                side-by-side timings (not a test)
#   make fuzz FUZZ_SECONDS=60 run each libFuzzer target (make fuzz-smoke: CI)
#   make check-valgrind       unit tests and CLI tests under valgrind memcheck
#   make wheel                $(BUILD)/dist/pycache-*.whl (pip, offline; pyproject.toml)
#   make static               $(BUILD)/static/pycache: one fully static binary (musl)
#
# Every profile is a plain make variable; each gets its own build directory so
# they never mix objects.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
DESTDIR ?=

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SAN     ?=
WERROR  ?=
PORTABLE ?=

ifeq ($(SAN)$(PORTABLE),11)
BUILD   ?= build-portable-san
else ifeq ($(SAN),1)
BUILD   ?= build-san
else ifeq ($(PORTABLE),1)
BUILD   ?= build-portable
else
BUILD   ?= build
endif

# The feature macros. The Linux build asks for everything (_GNU_SOURCE) and
# lets the probes (src/platform/probes/) pick its fast paths; PORTABLE=1 asks for
# POSIX.1-2008 with its XSI option and nothing more (glibc declares
# realpath only with one of them), and takes no fast path at all, so that a
# call outside POSIX fails to compile here rather than on a Mac.
ifeq ($(PORTABLE),1)
FEATURES = -D_POSIX_C_SOURCE=200809L -D_XOPEN_SOURCE=700
else
FEATURES = -D_GNU_SOURCE
endif

WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wpointer-arith -Wcast-qual -Wwrite-strings \
           -Wvla -Wundef -Wno-unused-parameter
CFLAGS  ?= -O2 -g
# CPPFLAGS, CFLAGS and LDFLAGS are the user's (Debian's dpkg-buildflags pass
# the hardening flags through them); they come last so they win.
ALL_CFLAGS = -std=c11 $(FEATURES) -D_FILE_OFFSET_BITS=64 $(WARNINGS) \
             -Iinclude -Isrc -I$(BUILD)/gen $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
# -pthread: the scan's walks are threads (FreeBSD's libc has no pthreads of
# its own; glibc 2.34+, musl and macOS need nothing, and accept it).
LIBS    = -lm -pthread
# The probes compile without -Werror: a warning in a probe is not a "no".
PROBE_CFLAGS := $(ALL_CFLAGS)
# The test programs (unit tests, test tools, the fault shim) are Linux
# programs in every build (unshare, setresuid, LD_PRELOAD); only the
# product is held to POSIX.
TEST_FEATURES = -D_GNU_SOURCE
# The command line only: the libraries of the fast paths the probes found
# (liburing for batched header reads, src/engine/headread.c), one per line
# of $(BUILD)/gen/cli-libs.
CLI_LIBS = $$(cat $(BUILD)/gen/cli-libs)

ifeq ($(WERROR),1)
ALL_CFLAGS += -Werror
endif
# Flags without sanitizers, for the copy of the library ctypes loads.
PLAIN_CFLAGS := $(ALL_CFLAGS)
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ALL_CFLAGS += $(SANFLAGS) -O1
ALL_LDFLAGS += $(SANFLAGS)
endif

# The platform room (src/platform/: the only place a Linux-only call lives) is
# part of the library: the walker and the reads use it as the commands do.
LIB_SRC  := $(sort $(wildcard src/lib/*.c src/platform/*.c))
# The command line: the commands (src/cli/) on the machinery they share
# (src/engine/: scan, removal, worker pool, batched reads, output).
CLI_SRC  := $(sort $(wildcard src/cli/*.c src/engine/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

SONAME = libpycache.so.0

.PHONY: deps test-deps tools all check check-unit check-integration install uninstall clean bench fuzz \
        unit-bins fuzz-bins fuzz-smoke check-valgrind

all: $(BUILD)/pycache $(BUILD)/libpycache.a $(BUILD)/libpycache.so $(BUILD)/libpycache.pc

# ---- feature probes ----------------------------------------------------------
#
# As tavianator/bfs's build/has/*.c: each src/platform/probes/NAME.c is a small
# program that compiles and links only where the fast path NAME exists (a
# "// libs: -lX" line names what it links with). scripts/probe runs them
# with this build's compiler and flags and writes $(BUILD)/gen/config.h
# (PYC_HAVE_NAME 0 or 1) and $(BUILD)/gen/cli-libs. PORTABLE=1 writes every
# one as 0 without compiling.
PROBES := $(sort $(wildcard src/platform/probes/*.c))
CONFIG_H = $(BUILD)/gen/config.h

$(CONFIG_H): $(PROBES) scripts/probe
	@mkdir -p $(@D)
	CC='$(CC)' CFLAGS='$(PROBE_CFLAGS)' LDFLAGS='$(LDFLAGS)' PORTABLE='$(PORTABLE)' \
	    WITHOUT='$(WITHOUT)' scripts/probe $(@D) $(PROBES)

.PHONY: config
config: $(CONFIG_H)
	@cat $(CONFIG_H)

$(BUILD)/%.o: %.c $(CONFIG_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/pic/%.o: %.c $(CONFIG_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c -o $@ $<

$(BUILD)/libpycache.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Only the pyc_* names of include/pycache.h are exported (src/lib/libpycache.map).
$(BUILD)/libpycache.so: $(PIC_OBJ) src/lib/libpycache.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/lib/libpycache.map $(ALL_LDFLAGS) -o $@ $(PIC_OBJ) $(LIBS)

$(BUILD)/pycache: $(CLI_OBJ) $(BUILD)/libpycache.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libpycache.a $(CLI_LIBS) $(LIBS)

$(BUILD)/libpycache.pc: libpycache.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define PYC_VERSION_STRING "\(.*\)"/\1/p' include/pycache.h)|g' \
	    $< > $@

# Installs the Debian packages the build needs (scripts/install-deps);
# test-deps: those the tests, fuzzing, benchmark and man page need too.
deps:
	scripts/install-deps

test-deps:
	scripts/install-deps --test

# `make -j2 deps all`: nothing is compiled before the packages are in.
DEPS_GOALS := $(filter deps test-deps,$(MAKECMDGOALS))
ifneq ($(DEPS_GOALS),)
$(LIB_OBJ) $(PIC_OBJ) $(CLI_OBJ): | $(DEPS_GOALS)
endif

# ---- tests -------------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libpycache.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_FEATURES) -Itests/unit -o $@ $< $(BUILD)/libpycache.a $(ALL_LDFLAGS) -lcmocka -lsodium $(LIBS)

unit-bins: $(UNIT_BIN)

# Small C programs the integration tests drive to reach library functions the
# CLI does not expose (tests/tools/*.c).
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libpycache.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_FEATURES) -o $@ $< $(BUILD)/libpycache.a $(ALL_LDFLAGS) $(LIBS)

# headread_probe drives the command line's io_uring reader directly.
$(BUILD)/tools/headread_probe: tests/tools/headread_probe.c src/engine/headread.c src/engine/headread.h $(BUILD)/libpycache.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_FEATURES) -o $@ $< src/engine/headread.c $(BUILD)/libpycache.a $(ALL_LDFLAGS) $(CLI_LIBS) $(LIBS)

tools: $(TOOL_BIN)

check-unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    PYCACHE_REFERENCE=$(CURDIR)/tests/reference $$t || fail=1; \
	done; exit $$fail

# Some integration tests call the library through ctypes, inside the test's
# Python process. A sanitized library cannot be loaded there (the ASan runtime
# must come first in a process), so SAN=1 builds a plain copy for ctypes; the
# binary and the test tools under test stay sanitized.
ifeq ($(SAN),1)
CTYPES_LIB = $(BUILD)/plain/libpycache.so
PLAIN_OBJ := $(LIB_SRC:%.c=$(BUILD)/plain/%.o)
$(BUILD)/plain/%.o: %.c $(CONFIG_H)
	@mkdir -p $(@D)
	$(CC) $(PLAIN_CFLAGS) -fPIC -MMD -MP -c -o $@ $<
$(CTYPES_LIB): $(PLAIN_OBJ) src/lib/libpycache.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/lib/libpycache.map $(LDFLAGS) -o $@ $(PLAIN_OBJ) $(LIBS)
else
CTYPES_LIB = $(BUILD)/libpycache.so
endif

# The LD_PRELOAD shim that injects I/O errors (tests/faults/README.md). Built
# without sanitizers even under SAN=1: the ASan runtime must come first in a
# process, so the tests preload libasan ahead of the shim instead.
$(BUILD)/faultshim.so: tests/faults/faultshim.c
	@mkdir -p $(@D)
	$(CC) $(PLAIN_CFLAGS) $(TEST_FEATURES) -fPIC -shared -o $@ $< $(LDFLAGS) -ldl

# The other build, whose output tests/integration/test_portable.py compares
# with this one's (skipped when it is not built): the Linux build for a
# portable run and the other way round.
ifeq ($(PORTABLE),1)
PEER_BUILD ?= build
else
PEER_BUILD ?= build-portable
endif

# The wheel and the static binary are tested when built: make check builds
# the wheel (not under SAN=1: it holds its own, plain build of the program);
# the static binary only with `make static` (musl-tools), as .ci/run does.
ifneq ($(SAN),1)
CHECK_WHEEL = wheel
endif
check-integration: all $(TOOL_BIN) $(CTYPES_LIB) $(BUILD)/faultshim.so $(CHECK_WHEEL)
	PYCACHE_BIN=$(abspath $(BUILD))/pycache PYCACHE_BUILD=$(abspath $(BUILD)) \
	    PYCACHE_CTYPES_LIB=$(abspath $(CTYPES_LIB)) PYCACHE_SAN=$(SAN) \
	    PYCACHE_PEER_BIN=$(abspath $(PEER_BUILD))/pycache \
	    PYCACHE_WHEEL=$$(ls $(abspath $(WHEEL_DIR))/pycache-*.whl 2>/dev/null) \
	    PYCACHE_STATIC=$$(ls $(abspath $(BUILD))/static/pycache 2>/dev/null) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# The test packages first (quiet when they are there), then the suites, one
# after the other: a parallel make must not compile a test before its
# library is installed.
check:
	@scripts/install-deps --test
	@$(MAKE) --no-print-directory check-unit
	@$(MAKE) --no-print-directory check-integration

# ---- the wheel (pyproject.toml, setup.py) -------------------------------------
#
# pip builds it the way a user's `pip install .` does, with build isolation
# and no network: setuptools and wheel come from Debian's
# /usr/share/python-wheels. setup.py runs this Makefile (BUILD under
# build/temp.*/c) with liburing linked statically, and names the wheel
# py3-none-manylinux_2_N_<arch> from objdump's newest GLIBC_2.N.

WHEEL_DIR = $(BUILD)/dist
.PHONY: wheel static
wheel:
	rm -rf $(WHEEL_DIR)
	PIP_NO_INDEX=1 PIP_FIND_LINKS=/usr/share/python-wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \
	    $(PYTHON) -m pip wheel -q --no-deps -w $(WHEEL_DIR) .

# ---- one fully static binary (musl) -------------------------------------------
#
# glibc's static libc warns at link time for getpwnam & co (they load NSS
# modules at run time) and is not meant for a binary alone in an empty root;
# musl (Debian's musl-tools: musl-gcc) is. musl-gcc's include path holds only
# musl's headers, so liburing's and the kernel's are linked in from the
# system's (liburing on x86_64 is built without libc: its .a links against
# musl as well).

STATIC_CC ?= musl-gcc
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
STATIC_INC = $(BUILD)/static/include

static: $(BUILD)/static/pycache

# The platform layer probes musl itself (src/platform/probes: no adaptive
# mutex there, io_uring through the static liburing).
LIBURING_A := $(shell $(CC) -print-file-name=liburing.a)
$(BUILD)/static/pycache: $(LIB_SRC) $(CLI_SRC) $(PROBES) scripts/probe \
                         $(wildcard include/*.h src/*/*.h)
	@rm -rf $(STATIC_INC) && mkdir -p $(STATIC_INC) $(BUILD)/static/gen
	ln -s /usr/include/liburing.h /usr/include/liburing /usr/include/linux \
	    /usr/include/asm-generic /usr/include/$(MULTIARCH)/asm $(STATIC_INC)/
	CC='$(STATIC_CC)' CFLAGS='-std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc -isystem $(STATIC_INC)' \
	    LDFLAGS='-static -L$(dir $(LIBURING_A))' PORTABLE= scripts/probe $(BUILD)/static/gen $(PROBES)
	$(STATIC_CC) -static -pthread -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	    $(WARNINGS) $(if $(filter 1,$(WERROR)),-Werror) \
	    -Iinclude -Isrc -I$(BUILD)/static/gen -isystem $(STATIC_INC) -O2 -s -o $@ \
	    $(LIB_SRC) $(CLI_SRC) $(LIBURING_A) -lm

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------
#
# Each tests/fuzz/fuzz_NAME.c is a libFuzzer target built with clang,
# ASan and UBSan, from its own sources (not from $(BUILD)'s objects).
#   make fuzz                 each target FUZZ_SECONDS (default 30) in turn
#   make fuzz-smoke           CI: replay every committed corpus, then 10 s each
#   make fuzz FUZZ_TARGETS=fuzz_header FUZZ_SECONDS=600
# New inputs go to $(FUZZ_BUILD)/corpus/NAME (tests/fuzz/corpus/NAME, the
# committed seeds, is only read); crashes to $(FUZZ_BUILD)/artifacts/.
# tests/fuzz/README.md: what each target checks, minimising the corpora.

FUZZ_SECONDS ?= 30
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARNINGS) -Iinclude -Isrc \
              -I$(FUZZ_BUILD)/gen \
              -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              $(if $(filter 1,$(WERROR)),-Werror)
FUZZ_ARGS ?=
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_RUN := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

# fuzz_options drives the command line's parsers: it links every CLI file
# but main.c, and wraps scan_run and the libc calls that change files or
# run programs so that a command running past its options aborts the run.
FUZZ_CLI_SRC := $(filter-out src/cli/main.c,$(CLI_SRC))
FUZZ_WRAP := scan_run unlink unlinkat rmdir rename renameat posix_spawn posix_spawnp \
             fork execve execvp regcomp
$(FUZZ_BUILD)/fuzz_options: FUZZ_EXTRA = $(FUZZ_CLI_SRC) $(FUZZ_WRAP:%=-Wl,--wrap=%) \
    $$(cat $(FUZZ_BUILD)/gen/cli-libs)
$(FUZZ_BUILD)/fuzz_options: $(FUZZ_CLI_SRC) $(wildcard src/cli/*.h src/engine/*.h)

# fuzz_archive drives the archive front end (src/engine/archive.c, with
# container images: src/engine/image.c; normalize's buffer rewrite:
# src/engine/convert.c) on archives held in memory.
# (libarchive linked as well as loaded on demand: the stubs of archive_lib.c
# find it already in the process.)
$(FUZZ_BUILD)/fuzz_archive: FUZZ_EXTRA = src/engine/archive.c src/engine/image.c \
    src/engine/archive_lib.c src/engine/convert.c -larchive -ldl -lnettle -ljansson
$(FUZZ_BUILD)/fuzz_archive: src/engine/archive.c src/engine/archive.h src/engine/image.c \
    src/engine/image.h src/engine/archive_lib.c src/engine/archive_lib.h \
    src/engine/convert.c src/engine/convert.h

# The fuzz build probes with its own compiler (the fast paths as the Linux build).
$(FUZZ_BUILD)/gen/config.h: $(PROBES) scripts/probe
	@mkdir -p $(@D)
	CC='$(FUZZ_CC)' CFLAGS='-std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc' \
	    LDFLAGS='$(LDFLAGS)' PORTABLE= scripts/probe $(@D) $(PROBES)

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRC) include/pycache.h src/lib/internal.h \
    $(FUZZ_BUILD)/gen/config.h $(wildcard src/platform/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(FUZZ_EXTRA) -lm

fuzz-bins: $(FUZZ_BIN)

fuzz: $(FUZZ_RUN)
	@for f in $(FUZZ_RUN); do \
	    n=$$(basename $$f); \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n $(FUZZ_BUILD)/artifacts tests/fuzz/corpus/$$n; \
	    echo "== $$n ($(FUZZ_SECONDS)s)"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$n- $(FUZZ_ARGS) \
	        $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# CI: every committed input must still pass (-runs=0 replays the corpus),
# then a short run of each target.
fuzz-smoke: $(FUZZ_RUN)
	@for f in $(FUZZ_RUN); do \
	    n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
	    $$f -runs=0 tests/fuzz/corpus/$$n || exit 1; \
	done
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# ---- valgrind -----------------------------------------------------------------
#
# make check-valgrind: every unit-test binary, then a curated, fast subset of
# the integration tests (VALGRIND_TESTS) with PYCACHE_BIN set to a wrapper
# that runs the real binary under memcheck. Reports go to one log per
# process in $(BUILD)/valgrind/ (world-writable: some tests run pycache as
# nobody through setpriv), never to the tests' stderr; the wrapper opens the
# log itself on fd 9 (--log-fd) because memcheck's --log-file takes the
# lowest free fd, which a test that closes fd 1 would see as stdout. The
# suppressions (tests/valgrind.supp) are memcheck's own false positives,
# each explained. The target fails
# when any log is not empty (or a test failed: memcheck exits 99 on an error).
# To stay fast, the tests parametrised over every interpreter run only for
# the oldest and newest ones and both 3.11s (VALGRIND_K, a pytest -k
# expression); tests marked slow are skipped; PYTEST_ARGS adds options.

VALGRIND ?= $(shell command -v valgrind 2>/dev/null || echo valgrind)
VALGRIND_FLAGS = --error-exitcode=99 --leak-check=full \
                 --errors-for-leak-kinds=definite,indirect --track-fds=no -q \
                 --suppressions=$(CURDIR)/tests/valgrind.supp
VALGRIND_TESTS ?= tests/integration/test_cli.py tests/integration/test_inspect.py \
                  tests/integration/test_check.py tests/integration/test_verdict.py \
                  tests/integration/test_where.py tests/integration/test_versions.py
VALGRIND_K ?= not (3.7.16 or 3.8.18 or 3.9.18 or 3.10.13 or 3.12.1)

VG_DIR = $(abspath $(BUILD))/valgrind

check-valgrind: all $(UNIT_BIN) $(TOOL_BIN)
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR) && chmod 1777 $(VG_DIR)
	@printf '#!/bin/sh\n# generated by make check-valgrind\nexec 9>>%s/$$$$.log\nexec %s %s --log-fd=9 %s "$$@"\n' \
	    '$(VG_DIR)' '$(VALGRIND)' '$(VALGRIND_FLAGS)' '$(abspath $(BUILD))/pycache' \
	    > $(BUILD)/pycache-valgrind
	@chmod 755 $(BUILD)/pycache-valgrind
	@fail=0; for t in $(UNIT_BIN); do \
	    n=$$(basename $$t); echo "== valgrind $$n"; \
	    PYCACHE_REFERENCE=$(CURDIR)/tests/reference $(VALGRIND) $(VALGRIND_FLAGS) \
	        --log-file=$(VG_DIR)/$$n-%p.log $$t > $(VG_DIR)/$$n.out 2>&1 \
	        || { cat $(VG_DIR)/$$n.out; fail=1; }; \
	done; \
	PYCACHE_BIN=$(abspath $(BUILD))/pycache-valgrind PYCACHE_BUILD=$(abspath $(BUILD)) \
	    PYCACHE_VALGRIND=1 $(PYTHON) -m pytest -q -p no:cacheprovider -m "not slow" \
	    -k '$(VALGRIND_K)' $(VALGRIND_TESTS) $(PYTEST_ARGS) || fail=1; \
	for l in $(VG_DIR)/*.log; do \
	    [ -s "$$l" ] || continue; echo "== $$l"; cat "$$l"; fail=1; \
	done; \
	[ $$fail = 0 ] && echo "check-valgrind: no reports"; exit $$fail

# ---- benchmark ----------------------------------------------------------------

bench: all wheel
	$(PYTHON) bench/bench.py --pycache $(abspath $(BUILD))/pycache \
	    --wheel $$(ls $(abspath $(WHEEL_DIR))/pycache-*.whl) $(BENCH_ARGS)

# ---- shell completions ------------------------------------------------------------
#
# completions/ is generated from the binary's own --help (scripts/gen-completions);
# test_docs.py fails when the committed files are out of date.
.PHONY: completions
completions: $(BUILD)/pycache
	$(PYTHON) scripts/gen-completions $(BUILD)/pycache

# ---- man page and install ----------------------------------------------------------

# The man page is written in scdoc (docs/pycache.1.scd); scdoc is a declared
# dependency (scripts/install-deps), so `make install` needs it.
.PHONY: man
man: $(BUILD)/pycache.1

$(BUILD)/pycache.1: docs/pycache.1.scd
	@mkdir -p $(@D)
	scdoc < $< > $@.tmp && mv $@.tmp $@

BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d

# What `make install` puts in place, relative to $(DESTDIR); `make uninstall`
# removes exactly these (the directories stay).
INSTALLED = $(BINDIR)/pycache $(LIBDIR)/libpycache.a $(LIBDIR)/$(SONAME) \
            $(LIBDIR)/libpycache.so $(INCDIR)/pycache.h \
            $(LIBDIR)/pkgconfig/libpycache.pc $(MANDIR)/man1/pycache.1 \
            $(BASHCOMPDIR)/pycache $(ZSHCOMPDIR)/_pycache $(FISHCOMPDIR)/pycache.fish

install: all $(BUILD)/pycache.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $(BUILD)/pycache $(DESTDIR)$(BINDIR)/pycache
	install -m 644 $(BUILD)/libpycache.a $(DESTDIR)$(LIBDIR)/libpycache.a
	install -m 755 $(BUILD)/libpycache.so $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpycache.so
	install -m 644 include/pycache.h $(DESTDIR)$(INCDIR)/pycache.h
	@# The .pc names the directories of this install (PREFIX may differ from
	@# the one the build's copy was made with).
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define PYC_VERSION_STRING "\(.*\)"/\1/p' include/pycache.h)|g' \
	    libpycache.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libpycache.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/libpycache.pc
	install -m 644 $(BUILD)/pycache.1 $(DESTDIR)$(MANDIR)/man1/pycache.1
	install -m 644 completions/pycache.bash $(DESTDIR)$(BASHCOMPDIR)/pycache
	install -m 644 completions/_pycache $(DESTDIR)$(ZSHCOMPDIR)/_pycache
	install -m 644 completions/pycache.fish $(DESTDIR)$(FISHCOMPDIR)/pycache.fish

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	rm -rf build build-san build-portable build-portable-san build-portable-clang build-portable-musl build-musl build-fuzz python/pycache.egg-info

-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
