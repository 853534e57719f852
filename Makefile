# apipolicy: build, run and test against Debian's nginx (nginx-dev).
#
#   make run    install what is missing, build, and serve the example
#               gateway on 127.0.0.1:8080 in front of a demo upstream
#               (PORT=, UPSTREAM_PORT=, REDIS_PORT=; "make reload" after
#               editing build/run/conf/gateway.conf)
#   make test   install what is missing, build, start a throw-away Redis,
#               run every suite; non-zero on any failure
#   make versions, make test-upstream
#               the module against nginx.org's versions (see below)
#   make deb, make test-deb, make test-docker
#               the Debian package, the Docker image's layout (see below)
#
# The module is built in build/ from a copy of Debian's nginx source tree
# (/usr/share/nginx/src) configured with the exact flags of the packaged
# binary, so the .so loads into /usr/sbin/nginx.

SHELL       := /bin/bash

NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := $(CURDIR)/build
TREE        := $(BUILD)/nginx
MODULE      := $(TREE)/objs/ngx_http_apipolicy_module.so

# the packaged binary's compiler flags, plus warnings as errors
CC_OPT := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security \
          -fPIC -Wdate-time -D_FORTIFY_SOURCE=2 -Wall -Wextra \
          -Wno-unused-parameter -Werror
LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

SOURCES := config ngx_http_apipolicy_module.c $(wildcard src/*.c src/*.h)

DEBIAN_PACKAGES := build-essential nginx nginx-dev \
    libjansson-dev libhiredis-dev libssl-dev redis-server openssl curl \
    libtest-base-perl libtext-diff-perl libwww-perl liblist-moreutils-perl \
    libipc-run-perl libtest-longstring-perl liburi-perl \
    prometheus

BENCH_PACKAGES := wrk libnginx-mod-http-js bc valgrind

UNIT        := $(BUILD)/unit/json-test $(BUILD)/unit/digest-test \
               $(BUILD)/unit/shm-test

# nginx.org sources (nginx-VERSION.tar.gz) for "make versions" and
# "make test-upstream"; the versions themselves are in util/versions.sh
NGINX_ARCHIVES ?= /work/shared/nginx
NGINX_SUITE    ?= 1.30.4
UPSTREAM       := $(BUILD)/versions/$(NGINX_SUITE)-suite
export NGINX_ARCHIVES NGINX_SUITE

# the Debian package (debian/), built from a copy of the sources in build/deb
DEB_PACKAGES := build-essential debhelper dpkg-dev nginx nginx-dev \
                libjansson-dev libhiredis-dev libssl-dev
DEB_SOURCES  := config ngx_http_apipolicy_module.c src debian docs \
                conf-examples contrib README.md LICENSE

.PHONY: all deps build module unit run reload test bench clean
.PHONY: versions test-upstream deb test-deb test-docker
.PHONY: test-asan asan fuzz FORCE

all: build

deps:
	@sh util/deps.sh $(DEBIAN_PACKAGES)

build: deps module

module: $(MODULE)

$(TREE)/Makefile.apipolicy: config
	rm -rf $(TREE)
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(TREE)
	cd $(TREE) && . ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt='$(CC_OPT)' --with-ld-opt='$(LD_OPT)' \
	    --add-dynamic-module=$(CURDIR) > $(BUILD)/configure.log 2>&1 \
	    || { tail -30 $(BUILD)/configure.log; exit 1; }
	touch $@

$(MODULE): $(TREE)/Makefile.apipolicy $(SOURCES)
	$(MAKE) -s -C $(TREE) -f objs/Makefile modules

# unit tests of pure C parts, against the build tree's nginx headers
unit: $(UNIT)

$(BUILD)/unit/json-test: t/unit/json-test.c t/unit/tap.h src/ngx_http_apipolicy_json.c \
         src/ngx_http_apipolicy_json.h $(TREE)/Makefile.apipolicy
	mkdir -p $(dir $@)
	cd $(TREE) && $(CC) -O1 -g -Wall -Wextra -Wno-unused-parameter -Werror \
	    -I src/core -I src/event -I src/event/modules -I src/os/unix \
	    -I objs -I $(CURDIR)/src $(CURDIR)/t/unit/json-test.c \
	    $(CURDIR)/src/ngx_http_apipolicy_json.c -ljansson -lm -o $@

# the tests of module code that includes the http headers: sanitized
UNIT_HTTP_CC = cd $(TREE) && $(CC) -O1 -g -Wall -Wextra \
	    -Wno-unused-parameter -Werror \
	    -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -I src/core -I src/event -I src/event/modules -I src/os/unix \
	    -I src/http -I src/http/modules -I src/http/v2 -I objs \
	    -I $(CURDIR)/src

$(BUILD)/unit/digest-test: t/unit/digest-test.c t/unit/tap.h \
         src/ngx_http_apipolicy_digest.c src/ngx_http_apipolicy_digest.h \
         $(TREE)/Makefile.apipolicy
	mkdir -p $(dir $@)
	$(UNIT_HTTP_CC) $(CURDIR)/t/unit/digest-test.c -lcrypto -o $@

$(BUILD)/unit/shm-test: t/unit/shm-test.c t/unit/tap.h \
         src/ngx_http_apipolicy_shm.c \
         src/ngx_http_apipolicy_shm.h $(TREE)/Makefile.apipolicy
	mkdir -p $(dir $@)
	$(UNIT_HTTP_CC) $(CURDIR)/t/unit/shm-test.c \
	    $(CURDIR)/src/ngx_http_apipolicy_shm.c -o $@

# nginx itself built from full source with AddressSanitizer and
# UndefinedBehaviorSanitizer, every pool allocation its own malloc
# (NGX_DEBUG_PALLOC), and the module as a dynamic module of that build
# (loaded as in production: the filter order depends on it):
# "make test-asan" runs every suite against it and fails on any report.
# Built once in build/asan/; later runs rebuild only what changed.
ASAN_TREE   := $(BUILD)/asan/nginx
ASAN_NGINX  := $(ASAN_TREE)/objs/nginx
ASAN_MODULE := $(ASAN_TREE)/objs/ngx_http_apipolicy_module.so
ASAN_CC     ?= clang
ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-sanitize=alignment,nonnull-attribute \
               -fsanitize-ignorelist=$(CURDIR)/util/asan-ignore.txt
ASAN_CC_OPT := -g -O1 -fno-omit-frame-pointer $(ASAN_FLAGS) \
               -DNGX_DEBUG_PALLOC=1

ASAN_CONF   := $(ASAN_CC) $(ASAN_CC_OPT) $(ASAN_FLAGS)
ASAN_PACKAGES := clang libclang-rt-14-dev dpkg-dev

asan: deps
	@sh util/deps.sh $(ASAN_PACKAGES)
	@$(MAKE) -s $(ASAN_NGINX)

# reconfigured when the compiler or the flags change, not otherwise
$(BUILD)/asan/flags: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = '$(ASAN_CONF)' ] || echo '$(ASAN_CONF)' > $@

$(ASAN_TREE)/Makefile.apipolicy: config util/asan-nginx.sh util/asan-ignore.txt \
                                 $(BUILD)/asan/flags
	bash util/asan-nginx.sh $(ASAN_TREE) '$(ASAN_CC)' '$(ASAN_CC_OPT)' \
	    '$(ASAN_FLAGS)'
	touch $@

$(ASAN_NGINX): $(ASAN_TREE)/Makefile.apipolicy $(SOURCES)
	$(MAKE) -s -j2 -C $(ASAN_TREE) -f objs/Makefile > $(BUILD)/asan/make.log 2>&1 \
	    || { tail -30 $(BUILD)/asan/make.log; exit 1; }

test-asan: asan unit
	@bash util/test-asan.sh $(ASAN_NGINX) $(ASAN_MODULE)

# libFuzzer targets (t/fuzz/), linked with the sanitizer build's objects;
# each runs FUZZ_SECONDS from its seed corpus (README, Security)
FUZZ_SECONDS ?= 60

fuzz: asan
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash util/fuzz.sh run

run: build
	@sh util/run.sh $(MODULE)

# the gateway of "make run" reloads build/run/conf after nginx -t
reload:
	@sh util/run.sh reload

test: build unit
	@bash util/test.sh $(MODULE)

# the module against every nginx.org version in util/versions.sh: dynamic
# (--with-compat) with and without http_ssl, and static (--add-module)
versions: deps
	@bash util/versions.sh

# every suite against nginx $(NGINX_SUITE) and its module, built from source
test-upstream: deps unit
	@bash util/versions.sh --suite
	@TEST_NGINX_BINARY=$(UPSTREAM)/nginx \
	    bash util/test.sh $(UPSTREAM)/ngx_http_apipolicy_module.so

# build/deb/libnginx-mod-http-apipolicy_*.deb, for the installed nginx
deb:
	@sh util/deps.sh $(DEB_PACKAGES)
	rm -rf $(BUILD)/deb
	mkdir -p $(BUILD)/deb/apipolicy
	cp -a $(DEB_SOURCES) $(BUILD)/deb/apipolicy/
	cd $(BUILD)/deb/apipolicy && dpkg-buildpackage -b -us -uc \
	    > $(BUILD)/deb/build.log 2>&1 \
	    || { tail -40 $(BUILD)/deb/build.log; exit 1; }
	@ls $(BUILD)/deb/*.deb

# installs that package with apt, "nginx -t" with it enabled, purges it
test-deb: deb
	@bash util/test-deb.sh

# the Dockerfile's runtime layout replayed into a temporary root, nginx -t
test-docker: build
	@bash util/test-docker.sh $(MODULE)

bench: build
	@sh util/deps.sh $(BENCH_PACKAGES)
	@bash bench/run.sh

clean:
	rm -rf $(BUILD) t/servroot*
