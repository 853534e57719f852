#!/bin/bash
# Runs every Test::Nginx suite against Debian's nginx with the built module,
# with a throw-away redis-server on a free loopback port.  Exits non-zero on
# any failure.  Called by "make test" (which builds first).
#
# The suites use Test::Nginx::Socket.  When the real Test::Nginx is not on
# @INC (it is not packaged in Debian), the compatible runner in t/compat/ is
# used instead.

set -u
cd "$(dirname "$0")/.."

MODULE=${1:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}

export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
# set and empty: a binary with the module built in (make test-asan)
export TEST_NGINX_LOAD_MODULES=${TEST_NGINX_LOAD_MODULES-$MODULE}
# a free port and a server root of its own per suite file: two checkouts
# (or two runs) on one machine never meet on port 1984
export TEST_NGINX_RANDOMIZE=${TEST_NGINX_RANDOMIZE:-1}

# TESTS="t/050-webhook.t t/051-webhook-headers.t" runs only those suites
TESTS=${TESTS:-t/*.t}

redis_dir=$(mktemp -d)
cleanup() {
    if [ -f "$redis_dir/redis.pid" ]; then
        kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null
    fi
    rm -rf "$redis_dir"
}
trap cleanup EXIT

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                     LocalPort => 0, ReuseAddr => 1)->sockport'
}

if command -v redis-server >/dev/null 2>&1; then
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$redis_dir/redis.pid" \
        --logfile "$redis_dir/redis.log" --dir "$redis_dir" >/dev/null
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export TEST_NGINX_REDIS_PORT=$port
    echo "redis-server on 127.0.0.1:$port"
else
    echo "redis-server not found: Redis-backed suites will skip"
fi

inc=()
if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    inc=(-I t/compat)
    echo "Test::Nginx not installed: using the compatible runner in t/compat"
fi

# The suites mostly wait (slow backends, expiry, reloads), so they run
# side by side: TEST_JOBS at a time (default 3), each on its own port and
# server root.  The ones that use the shared Redis flush it, so they run
# one after another, next to the others. Suites that measure what
# several gateways admit against a quota under a paced load (marked
# "apipolicy-test: alone") run last, with nothing else on the machine.
shared=()
alone=()
last=()
for t in $TESTS; do
    if grep -q '^# apipolicy-test: alone' "$t"; then
        last+=("$t")
    elif grep -q TEST_NGINX_REDIS_PORT "$t"; then
        shared+=("$t")
    else
        alone+=("$t")
    fi
done

rc=0
all_log=$redis_dir/all.log
prove --exec '' build/unit/json-test build/unit/digest-test \
    build/unit/shm-test 2>&1 | tee -a "$all_log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

shared_log=$redis_dir/shared.log
shared_pid=
if [ ${#shared[@]} -gt 0 ]; then
    prove "${inc[@]}" "${shared[@]}" > "$shared_log" 2>&1 &
    shared_pid=$!
fi
if [ ${#alone[@]} -gt 0 ]; then
    prove "${inc[@]}" -j "${TEST_JOBS:-3}" "${alone[@]}" 2>&1 \
        | tee -a "$all_log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fi
if [ -n "$shared_pid" ]; then
    wait "$shared_pid" || rc=1
    echo "--- the suites on the shared Redis, one after another:"
    cat "$shared_log" | tee -a "$all_log"
fi
if [ ${#last[@]} -gt 0 ]; then
    echo "--- the suites that run alone:"
    prove "${inc[@]}" "${last[@]}" 2>&1 | tee -a "$all_log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fi
# the runner's self-test on free ports too (its default, 1984, is shared)
TEST_NGINX_SERVER_PORT=$(free_port) TEST_NGINX_BACKEND_PORT=$(free_port) \
    prove -I t/compat t/compat/selftest.t 2>&1 | tee -a "$all_log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

# A failure's diagnostics scroll far up in a long run (and a CI page may
# show only the end): they are repeated last, one line each, without the
# debug lines of the error log that follow a matched line.
if [ $rc -ne 0 ]; then
    echo "--- what failed, once more:"
    grep -E -A6 '^( *# )?#   Failed test' "$all_log" \
        | grep -v -E -e '^--$' \
              -e '^( *# )?# 20[0-9]{2}/[0-9/]+ [0-9:]+ \[debug\]' \
        | cut -c1-600 | head -120
fi

exit $rc
