#!/bin/bash
# apipolicy benchmark: wrk against real nginx, each policy scenario compared
# with plain nginx proxying the same upstream, measured in the same run.
#
#   bench/run.sh [seconds-per-round] [rounds]
#
# One nginx serves the upstream (127.0.0.1:19081, a small JSON answer) and
# the gateway (127.0.0.1:19080) with one location per scenario; "plain" is
# the same proxy_pass with no apipolicy directive.  Rounds alternate the
# scenarios so drift hits them alike; the table reports the median req/s of
# each and its ratio to plain.  Scenario definitions: bench/scenarios.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROUND=${1:-5}
ROUNDS=${2:-3}
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
[ -f "$MODULE" ] || { echo "build the module first: make module"; exit 1; }

work=$(mktemp -d)
prefix=$work/nginx
mkdir -p "$prefix/conf" "$prefix/logs"
cp -r bench/. "$work/bench"
[ -x bench/prepare.sh ] && bench/prepare.sh "$work"

{
    echo "load_module $MODULE;"
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
    echo "    location /plain { proxy_pass http://app; }"
    echo "    include $work/bench/locations.conf;"
    echo "  }"
    echo "}"
} > "$prefix/conf/nginx.conf"

"$NGINX" -t -q -p "$prefix/" -c conf/nginx.conf
"$NGINX" -p "$prefix/" -c conf/nginx.conf
trap '"$NGINX" -p "$prefix/" -c conf/nginx.conf -s stop 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5

# scenarios: name|path|wrk arguments (headers, -s script)
mapfile -t scenarios < <(grep -v '^#' bench/scenarios | grep -v '^$')
scenarios=("plain|/plain|" "${scenarios[@]}")

declare -A results
for round in $(seq "$ROUNDS"); do
    for s in "${scenarios[@]}"; do
        IFS='|' read -r name path args <<< "$s"
        args=${args//@WORK@/$work}
        out=$(eval wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" \
                   $args "http://127.0.0.1:19080$path" 2>&1)
        rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
        non2xx=$(awk '/Non-2xx/ {print $5}' <<< "$out")
        results[$name]="${results[$name]:-} $rps"
        echo "round $round  $name  $rps req/s${non2xx:+  ($non2xx non-2xx)}" >&2
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

plain=$(median <<< "${results[plain]}")
echo
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), $(nproc) cores, 1 worker, wrk -t$THREADS -c$CONNECTIONS, ${ROUNDS}x${SECONDS_PER_ROUND}s, median"
echo
echo "| scenario | req/s | vs plain nginx |"
echo "|---|---:|---:|"
for s in "${scenarios[@]}"; do
    IFS='|' read -r name _ _ <<< "$s"
    m=$(median <<< "${results[$name]}")
    printf '| %s | %.0f | %.1f%% |\n' "$name" "$m" "$(echo "100 * $m / $plain" | bc -l)"
done
