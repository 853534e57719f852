#!/bin/bash
# Builds apipolicy against nginx.org's own sources, with nginx's own compiler
# flags (-Werror included), the way an operator with another nginx would:
#
#   util/versions.sh            every version in NGINX_VERSIONS as a dynamic
#                               module (--with-compat), with and without
#                               --with-http_ssl_module, and NGINX_STATIC as
#                               a static module (--add-module) whose binary
#                               must pass "nginx -t" with an apipolicy config
#   util/versions.sh --suite    nginx NGINX_SUITE (binary and module) with
#                               the features the suites use, for
#                               "make test-upstream"; prints nothing else
#
# The archives are nginx-VERSION.tar.gz in NGINX_ARCHIVES (nginx.org release
# tarballs with ./configure, or GitHub archives with auto/configure).  Each
# is unpacked once into build/versions/, each build has a directory of its
# own there (--builddir) and is configured again only when `config` or the
# configure arguments changed: a second run recompiles only what changed.
# Exits non-zero when a build fails, after trying every build.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

archives=${NGINX_ARCHIVES:-/work/shared/nginx}
versions=${NGINX_VERSIONS:-1.24.0 1.26.3 1.30.4 1.31.4}
static=${NGINX_STATIC:-1.31.4}
suite=${NGINX_SUITE:-1.30.4}
out=$PWD/build/versions
jobs=${JOBS:-2}

mkdir -p "$out"

# the features of Debian's nginx the suites and the runner's self-test
# rely on (auth_request, sub_filter, debug log lines), without its paths
suite_flags="--with-compat --with-debug --with-threads --with-pcre-jit
             --with-http_ssl_module --with-http_v2_module
             --with-http_realip_module --with-http_auth_request_module
             --with-http_stub_status_module --with-http_sub_module"

# unpacks nginx-VERSION once; sets $src and $configure
unpack() {
    src=$out/nginx-$1
    if [ ! -d "$src/src/core" ]; then
        local tarball=$archives/nginx-$1.tar.gz
        if [ ! -f "$tarball" ]; then
            echo "versions: $tarball not found (set NGINX_ARCHIVES)" >&2
            return 1
        fi
        rm -rf "$src" "$src.part"
        mkdir -p "$src.part"
        tar -C "$src.part" --strip-components=1 -xzf "$tarball" || return 1
        mv "$src.part" "$src"
    fi
    configure=./configure
    [ -x "$src/configure" ] || configure=auto/configure
}

# build NAME VERSION MAKE-TARGET CONFIGURE-ARGS...
build() {
    local name=$1 version=$2 target=$3
    shift 3
    local dir=$out/$name args="$* --builddir=$out/$name"

    unpack "$version" || return 1

    if [ ! -f "$dir/Makefile" ] || [ config -nt "$dir/Makefile" ] \
       || [ "$(cat "$dir/configure.args" 2>/dev/null)" != "$args" ]
    then
        rm -rf "$dir"
        mkdir -p "$dir"
        if ! (cd "$src" && $configure "$@" --builddir="$dir") \
                > "$dir/configure.log" 2>&1
        then
            tail -20 "$dir/configure.log"
            return 1
        fi
        echo "$args" > "$dir/configure.args"
    fi

    if ! make -j"$jobs" -C "$src" -f "$dir/Makefile" $target \
            > "$dir/make.log" 2>&1
    then
        grep -E '(error|warning):' "$dir/make.log" | head -20
        return 1
    fi
}

# nginx -t of a static binary with an apipolicy directive in each context
static_check() {
    local nginx=$1 prefix
    prefix=$(mktemp -d)
    mkdir -p "$prefix/conf" "$prefix/logs"
    cat > "$prefix/conf/nginx.conf" <<'CONF'
events {}
http {
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s;
    server {
        listen 127.0.0.1:1;
        location / {
            apipolicy_cors_origins https://app.example.com;
            apipolicy_ratelimit zone=api key=$binary_remote_addr;
        }
    }
}
CONF
    "$nginx" -t -q -p "$prefix/" -c conf/nginx.conf \
        -g "pid $prefix/logs/nginx.pid; error_log $prefix/logs/error.log;"
    local rc=$?
    [ $rc -eq 0 ] || cat "$prefix/logs/error.log"
    rm -rf "$prefix"
    return $rc
}

if [ "${1:-}" = --suite ]; then
    # shellcheck disable=SC2086
    build "$suite-suite" "$suite" "" $suite_flags \
          --add-dynamic-module="$PWD" || exit 1
    exit 0
fi

rc=0
summary=""

run() {
    local label=$1 start=$SECONDS result=ok
    shift
    "$@" || { result=FAILED; rc=1; }
    summary+=$(printf '  %-36s %-6s %3ds' "$label" "$result" \
                      $((SECONDS - start)))$'\n'
    echo "versions: $label: $result ($((SECONDS - start))s)"
    [ $result = ok ]
}

for v in $versions; do
    run "nginx $v dynamic, http_ssl" build "$v-ssl" "$v" modules \
        --with-compat --with-http_ssl_module --add-dynamic-module="$PWD"
    run "nginx $v dynamic, no ssl" build "$v-nossl" "$v" modules \
        --with-compat --add-dynamic-module="$PWD"
done

if run "nginx $static static, http_ssl" build "$static-static" "$static" "" \
       --with-http_ssl_module --add-module="$PWD"
then
    run "nginx $static static: nginx -t" static_check \
        "$out/$static-static/nginx"
fi

echo "versions: apipolicy against nginx.org sources ($archives):"
printf '%s' "$summary"
exit $rc
