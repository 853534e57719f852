#!/bin/bash
# Runs the suites (every one, or TESTS=...) against nginx built from full
# source with AddressSanitizer and UndefinedBehaviorSanitizer, with the
# apipolicy module of that build ("make test-asan" builds both first).  Fails
# when a suite fails, when a sanitizer reported anything, or when an nginx
# process died of a signal.
#
# The sanitizers write their reports to files (log_path) rather than to
# nginx's stderr, which is the error log of a server root the runner
# deletes: the files are read after the run and printed.
set -u
cd "$(dirname "$0")/.."

NGINX=${1:-$PWD/build/asan/nginx/objs/nginx}
MODULE=${2:-$PWD/build/asan/nginx/objs/ngx_http_apipolicy_module.so}

reports=$PWD/build/asan/reports
rm -rf "$reports"
mkdir -p "$reports"

# abort_on_error=0: a finding ends the process with exit code 1, which a
# master reports as "exited with fatal code", never hidden as a signal;
# handle_abort: an abort() is reported (with its stack) like a crash.
# Leaks are not checked: nginx leaves its cycle to exit() by design.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=0:abort_on_error=0:handle_abort=1:handle_segv=1:handle_sigbus=1:handle_sigfpe=1:handle_sigill=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:detect_invalid_pointer_pairs=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
export TEST_NGINX_BINARY=$NGINX
export TEST_NGINX_LOAD_MODULES=$MODULE
# every suite but the Docker image's: it checks the libraries of the .so
# "make test" builds (this one links the sanitizers' too)
export TESTS=${TESTS:-$(ls t/*.t | grep -v '^t/003-docker\.t$' | tr '\n' ' ')}

rc=0
bash util/test.sh "$MODULE" 2>&1 | tee "$reports/prove.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1

found=$(find "$reports" -name 'asan.*' -o -name 'ubsan.*' | sort)
if [ -n "$found" ]; then
    for f in $found; do
        echo "==== $f"
        cat "$f"
    done
    echo "test-asan: sanitizer reports above ($(echo "$found" | wc -l) files)"
    rc=1
fi

# a master logs a worker killed by a signal as an alert; the runner prints
# every alert it was not told to expect
if grep -n 'exited on signal' "$reports/prove.log"; then
    echo "test-asan: an nginx process died of a signal"
    rc=1
fi

[ $rc -eq 0 ] && echo "test-asan: no sanitizer report, no signal"
exit $rc
