# pycache — build, test, install.
#
#   make                      build/pycache, build/libpycache.a, build/libpycache.so
#   make check                unit tests (C, cmocka) then integration tests (pytest)
#   make SAN=1 check          the same under AddressSanitizer + UBSan (own build dir)
#   make WERROR=1             warnings are errors (CI)
#   make install PREFIX=/usr/local DESTDIR=
#   make bench                side-by-side timings (not a test)
#   make fuzz FUZZ_SECONDS=60 run each libFuzzer target
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

ifeq ($(SAN),1)
BUILD   ?= build-san
else
BUILD   ?= build
endif

WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wpointer-arith -Wcast-qual -Wwrite-strings \
           -Wvla -Wundef -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARNINGS) \
             -Iinclude -Isrc $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
LIBS    = -lm

ifeq ($(WERROR),1)
ALL_CFLAGS += -Werror
endif
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ALL_CFLAGS += $(SANFLAGS) -O1
ALL_LDFLAGS += $(SANFLAGS)
endif

LIB_SRC  := $(sort $(wildcard src/lib/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

SONAME = libpycache.so.0

.PHONY: deps tools all check check-unit check-integration install uninstall clean bench fuzz \
        unit-bins

all: $(BUILD)/pycache $(BUILD)/libpycache.a $(BUILD)/libpycache.so $(BUILD)/libpycache.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c -o $@ $<

$(BUILD)/libpycache.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Only the pyc_* names of include/pycache.h are exported (src/lib/libpycache.map).
$(BUILD)/libpycache.so: $(PIC_OBJ) src/lib/libpycache.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/lib/libpycache.map $(ALL_LDFLAGS) -o $@ $(PIC_OBJ) $(LIBS)

$(BUILD)/pycache: $(CLI_OBJ) $(BUILD)/libpycache.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libpycache.a $(LIBS)

$(BUILD)/libpycache.pc: libpycache.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(shell sed -n 's/^#define PYC_VERSION_STRING "\(.*\)"/\1/p' include/pycache.h)|g' \
	    $< > $@

# Installs the Debian packages the build, tests and docs need (scripts/install-deps).
deps:
	scripts/install-deps

# ---- tests -------------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libpycache.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libpycache.a $(ALL_LDFLAGS) -lcmocka -lsodium $(LIBS)

unit-bins: $(UNIT_BIN)

# Small C programs the integration tests drive to reach library functions the
# CLI does not expose (tests/tools/*.c).
$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libpycache.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libpycache.a $(ALL_LDFLAGS) $(LIBS)

tools: $(TOOL_BIN)

check-unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    PYCACHE_REFERENCE=$(CURDIR)/tests/reference $$t || fail=1; \
	done; exit $$fail

check-integration: all $(TOOL_BIN)
	PYCACHE_BIN=$(CURDIR)/$(BUILD)/pycache PYCACHE_BUILD=$(CURDIR)/$(BUILD) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

check: check-unit check-integration

# ---- fuzzing (clang + libFuzzer) ---------------------------------------------

FUZZ_SECONDS ?= 30
FUZZ_BUILD = build-fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc -g -O1 \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIB_SRC) include/pycache.h
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) -lm

fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	    n=$$(basename $$f); mkdir -p tests/fuzz/corpus/$$n; \
	    echo "== $$n ($(FUZZ_SECONDS)s)"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        tests/fuzz/corpus/$$n || exit 1; \
	done

# ---- benchmark ----------------------------------------------------------------

bench: all
	$(PYTHON) bench/bench.py --pycache $(CURDIR)/$(BUILD)/pycache $(BENCH_ARGS)

# ---- install -------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 755 $(BUILD)/pycache $(DESTDIR)$(BINDIR)/pycache
	install -m 644 $(BUILD)/libpycache.a $(DESTDIR)$(LIBDIR)/libpycache.a
	install -m 755 $(BUILD)/libpycache.so $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpycache.so
	install -m 644 include/pycache.h $(DESTDIR)$(INCDIR)/pycache.h
	install -m 644 $(BUILD)/libpycache.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libpycache.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pycache $(DESTDIR)$(LIBDIR)/libpycache.a \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libpycache.so \
	      $(DESTDIR)$(INCDIR)/pycache.h $(DESTDIR)$(LIBDIR)/pkgconfig/libpycache.pc

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
