#!/bin/bash
# usage: fuzz.sh build|run [TARGET...]
#
# libFuzzer targets in t/fuzz/*.c ("make fuzz").  Each target #includes the
# apipolicy source file it drives and is linked with the other objects of
# the sanitizer build (build/asan/nginx/objs: nginx and apipolicy, ASan +
# UBSan), with clang's -fsanitize=fuzzer.  "run" gives each target
# FUZZ_SECONDS (default 60) from its seed corpus t/fuzz/corpus/TARGET/ plus
# what earlier runs found (build/fuzz/corpus/TARGET/), after replaying
# t/fuzz/regress/TARGET/ (inputs that once crashed); a crash, a leak, a
# timeout (FUZZ_TIMEOUT, default 5 s) or a sanitizer report fails it and
# leaves the input in build/fuzz/crash-TARGET-*.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=$1; shift
tree=$PWD/build/asan/nginx
out=$PWD/build/fuzz
cc=${ASAN_CC:-clang}
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=($(cd t/fuzz && ls *.c | sed 's/\.c$//'))
fi

mkdir -p "$out"

# the sanitizer build's compiler flags, plus libFuzzer
flags=$(sed -n 's/^CFLAGS = //p' "$tree/objs/Makefile")
# every library nginx or the module links with (the binary's and the .so's)
libs=$(grep -o -e ' -l[^ ]*' -e ' -Wl,-E' "$tree/objs/Makefile" | sort -u | tr -d '\n')
incs=$(sed -n '/^ALL_INCS = /,/^$/p' "$tree/objs/Makefile" \
       | sed 's/^ALL_INCS = //; s/\\$//; s/-I//' | tr -s ' \t' '\n\n' \
       | grep -v '^$' | sed "s|^\([^/]\)|$tree/\1|; s|^|-I|" | tr '\n' ' ')

# nginx's main() renamed: libFuzzer has its own
if [ ! -f "$out/nginx.o" ] || [ "$tree/objs/src/core/nginx.o" -nt "$out/nginx.o" ]; then
    objcopy --redefine-sym main=ngx_fuzz_nginx_main \
        "$tree/objs/src/core/nginx.o" "$out/nginx.o"
fi

build() {
    local t=$1 src=t/fuzz/$1.c bin=$out/$1 exclude objs
    # the apipolicy file the target includes is not linked a second time
    exclude=$(sed -n 's|^#include "\.\./\.\./src/\(.*\)\.c"|\1.o|p' "$src")
    objs=$(find "$tree/objs/src" "$tree/objs/addon" "$tree/objs/ngx_modules.o" \
               -name '*.o' ! -path '*/src/core/nginx.o' \
               ${exclude:+! -name "$exclude"} | sort)
    if [ -f "$bin" ] && [ -z "$(find "$src" t/fuzz/fuzz.h src $objs \
                                    -newer "$bin" -print -quit)" ]; then
        return 0
    fi
    echo "fuzz: building $t"
    # shellcheck disable=SC2086
    $cc $flags -fsanitize=fuzzer -Wno-unused-function $incs -I src \
        "$src" $objs "$out/nginx.o" $libs -o "$bin"
}

run() {
    local t=$1 corpus=$out/corpus/$1 regress=t/fuzz/regress/$1
    mkdir -p "$corpus"
    if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
        echo "fuzz: $t: replaying $regress"
        "$out/$t" -runs=0 "$regress"/* > "$out/$t.regress.log" 2>&1 \
            || { cat "$out/$t.regress.log"; return 1; }
    fi
    echo "fuzz: $t: ${seconds}s"
    "$out/$t" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-5}" \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$out/crash-$t-" "$corpus" "t/fuzz/corpus/$t" \
        > "$out/$t.log" 2>&1 \
        || { tail -60 "$out/$t.log"; echo "fuzz: $t FAILED (input: $out/crash-$t-*)"; return 1; }
    grep -E 'stat::number_of_executed_units|cov:' "$out/$t.log" | tail -2 \
        | sed "s/^/fuzz: $t: /"
}

rc=0
for t in "${targets[@]}"; do
    build "$t"
    if [ "$mode" = run ]; then
        run "$t" || rc=1
    fi
done
exit $rc
