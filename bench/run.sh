#!/bin/bash
# apipolicy benchmark: wrk against real nginx, each policy scenario compared
# with plain nginx proxying the same upstream, measured in the same run.
#
#   bench/run.sh [seconds-per-round] [rounds]
#   ONLY='jwt-.*' bench/run.sh      only these scenarios
#
# One nginx serves the upstream (127.0.0.1:19081, a small JSON answer), the
# gateway (127.0.0.1:19080) with one location per scenario, and its plain
# twin (127.0.0.1:19082): the same locations, each only the proxy_pass,
# with no apipolicy directive.  In every round each
# scenario runs right after plain nginx given the same request; the table
# reports median req/s and the median of the per-pair ratios.  Scenario
# definitions: bench/scenarios, bench/locations.conf, bench/http.conf.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROUND=${1:-5}
ROUNDS=${2:-3}
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
NJS_MODULE=${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
[ -f "$MODULE" ] || { echo "build the module first: make module"; exit 1; }
[ -f "$NJS_MODULE" ] || { echo "njs is missing: apt-get install libnginx-mod-http-js"; exit 1; }

work=$(mktemp -d)
prefix=$work/nginx
mkdir -p "$prefix/conf" "$prefix/logs"
cp -r bench/. "$work/bench"
[ -x bench/prepare.sh ] && bench/prepare.sh "$work"

{
    echo "load_module $MODULE;"
    echo "load_module $NJS_MODULE;"
    echo "worker_processes 1;"
    echo "pid logs/nginx.pid;"
    echo "error_log logs/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http {"
    echo "  access_log off;"
    echo "  upstream app { server 127.0.0.1:19081; keepalive 64; }"
    echo "  server { listen 127.0.0.1:19081;"
    echo "    location / { default_type application/json;"
    echo "                 return 200 '{\"id\":1,\"name\":\"alpha\"}'; } }"
    echo "  include $work/bench/http.conf;"
    echo "  server { listen 127.0.0.1:19080;"
    echo "    proxy_http_version 1.1;"
    echo "    proxy_set_header Connection \"\";"
    echo "    include $work/bench/locations.conf;"
    echo "  }"
    echo "  server { listen 127.0.0.1:19082;"
    echo "    proxy_http_version 1.1;"
    echo "    proxy_set_header Connection \"\";"
    awk -f bench/plain-locations.awk bench/locations.conf
    echo "  }"
    echo "}"
} > "$prefix/conf/nginx.conf"

"$NGINX" -t -q -p "$prefix/" -c conf/nginx.conf
"$NGINX" -p "$prefix/" -c conf/nginx.conf
trap '"$NGINX" -p "$prefix/" -c conf/nginx.conf -s stop 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5

# scenarios: name|path|wrk arguments (headers, -s script).  Each scenario
# is compared with plain nginx proxying the same request (same headers) to
# the same upstream, run right before it in every round: the ratio is
# taken per pair and the table gives the median of the pairs, which holds
# up on a machine whose speed drifts.
mapfile -t scenarios < <(grep -v '^#' bench/scenarios | grep -v '^$')
if [ -n "${ONLY:-}" ]; then         # ONLY=regex: a subset, for profiling
    mapfile -t scenarios < <(printf '%s\n' "${scenarios[@]}" | grep -E "^(${ONLY})\|")
fi

worker_ticks() {   # user + system CPU of the worker so far, in clock ticks
    local pid
    pid=$(pgrep -P "$(cat "$prefix/logs/nginx.pid")" | head -1)
    awk '{print $14 + $15}' "/proc/$pid/stat"
}

bench() {   # name URL args -> req/s and worker CPU µs a request
    local out rps non2xx t0 t1 n cpu
    t0=$(worker_ticks)
    out=$(eval wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" \
               "$3" "$2" 2>&1)
    t1=$(worker_ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    n=$(awk '/requests in/ {print $1}' <<< "$out")
    cpu=$(echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $n" | bc -l)
    non2xx=$(awk '/Non-2xx/ {print $5}' <<< "$out")
    printf 'round %s  %s  %s req/s  %.2f µs CPU/request%s\n' "$round" "$1" \
        "$rps" "$cpu" "${non2xx:+  ($non2xx non-2xx)}" >&2
    echo "$rps $cpu"
}

declare -A results plains ratios cpus cpuratios
for round in $(seq "$ROUNDS"); do
    for s in "${scenarios[@]}"; do
        IFS='|' read -r name path args <<< "$s"
        args=${args//@WORK@/$work}
        read -r b bcpu < <(bench "plain ($name)" "http://127.0.0.1:19082$path" "$args")
        read -r m mcpu < <(bench "$name" "http://127.0.0.1:19080$path" "$args")
        plains[$name]="${plains[$name]:-} $b"
        results[$name]="${results[$name]:-} $m"
        ratios[$name]="${ratios[$name]:-} $(echo "100 * $m / $b" | bc -l)"
        cpus[$name]="${cpus[$name]:-} $mcpu"
        cpuratios[$name]="${cpuratios[$name]:-} $(echo "100 * $bcpu / $mcpu" | bc -l)"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), $(nproc) cores, 1 worker, wrk -t$THREADS -c$CONNECTIONS, ${ROUNDS} rounds of ${SECONDS_PER_ROUND}s, medians"
echo
echo "| scenario | req/s | plain nginx, same request | ratio (median of pairs) | worker CPU µs/request | CPU ratio |"
echo "|---|---:|---:|---:|---:|---:|"
for s in "${scenarios[@]}"; do
    IFS='|' read -r name _ _ <<< "$s"
    printf '| %s | %.0f | %.0f | %.1f%% | %.2f | %.1f%% |\n' "$name" \
        "$(median <<< "${results[$name]}")" "$(median <<< "${plains[$name]}")" \
        "$(median <<< "${ratios[$name]}")" "$(median <<< "${cpus[$name]}")" \
        "$(median <<< "${cpuratios[$name]}")"
done

# the rounds themselves, as bench/compare.sh gives them: how far one run's
# rounds spread tells what its median can mean
echo
echo "Each round's req/s ratio, lowest to highest:"
echo
for s in "${scenarios[@]}"; do
    IFS='|' read -r name _ _ <<< "$s"
    printf -- '- %s: %s\n' "$name" \
        "$(tr ' ' '\n' <<< "${ratios[$name]}" | grep -v '^$' | sort -g \
           | awk '{if (NR > 1) printf ", "; printf "%.1f", $1}')"
done

# RS256 without the cache: the worker CPU one verification adds, from the
# two rates measured above (the worker is the bottleneck in both), next to
# what OpenSSL itself verifies on one core
if [ -n "${results[jwt-rs256]:-}" ]; then
    rs=$(median <<< "${results[jwt-rs256]}")
    plain=$(median <<< "${plains[jwt-rs256]}")
    per=$(echo "1 / (1 / $rs - 1 / $plain)" | bc -l)
    ossl=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $NF}')
    echo
    printf 'RS256, every request verified: %.0f verifications/s of worker CPU\n' "$per"
    printf '= 1 / (1/%.0f - 1/%.0f); openssl speed rsa2048 verify, one core: %.0f/s; ratio %.0f%%\n' \
        "$rs" "$plain" "$ossl" "$(echo "100 * $per / $ossl" | bc -l)"
fi
