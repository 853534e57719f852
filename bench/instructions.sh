#!/bin/bash
# apipolicy cost per request in instructions: the gateway runs as one
# nginx process (master_process off) under valgrind --tool=callgrind, the
# upstream is a plain nginx of its own (not counted) behind a keepalive
# pool, and each scenario of bench/scenarios, plus plain proxying, is
# sent N and then 2N requests over one keep-alive connection, each time
# in a fresh gateway: (count(2N) - count(N)) / N is the user-space
# instructions one request costs, start-up and shutdown cancelled out.
#
#   bench/instructions.sh [N]          (default 1000)
#   ONLY='jwt-.*|full-stack' bench/instructions.sh
#   KEEP=1 bench/instructions.sh       keep the callgrind files (their
#                                      folder is printed): callgrind_annotate
#                                      on NAME.COUNT.1 (per line with
#                                      --auto=yes)
#
# Unlike wrk's requests per second, which move by 10-20% between runs on a
# shared machine, the same build gives the same count to within 0.5%.
set -euo pipefail
shopt -s inherit_errexit         # a failed count stops the whole script
cd "$(dirname "$0")/.."

N=${1:-1000}
NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
NJS_MODULE=${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}

command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind"; exit 1; }
[ -f "$MODULE" ] || { echo "build the module first: make module"; exit 1; }

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

wait_port() {   # port -> 0 once something listens there
    local i
    for i in $(seq 300); do
        perl -MIO::Socket::INET -e \
            'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]")' "$1" \
            2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

work=$(mktemp -d)
cp -r bench/. "$work/bench"
[ -x bench/prepare.sh ] && bench/prepare.sh "$work"

upstream_port=$(free_port)
gateway_port=$(free_port)
twin_port=$(free_port)

# the upstream: plain nginx, not counted
mkdir -p "$work/upstream/logs"
cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1;
pid $work/upstream/nginx.pid;
error_log $work/upstream/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    server { listen 127.0.0.1:$upstream_port;
             keepalive_requests 100000;
             location / { default_type application/json;
                          return 200 '{"id":1,"name":"alpha"}'; } }
}
CONF

njs=
[ -f "$NJS_MODULE" ] && njs="load_module $NJS_MODULE;"

if [ -n "$njs" ]; then
    cp "$work/bench/locations.conf" "$work/bench/gateway-locations.conf"
else                    # without njs, its location goes
    awk '/^location \/njs-/ {skip = 1} !skip {print} skip && /^}/ {skip = 0}' \
        "$work/bench/locations.conf" > "$work/bench/gateway-locations.conf"
fi

# the gateway: the locations of bench/locations.conf and /plain; and in
# the same process its plain twin, the same locations with no apipolicy
# directive, for "plain, same request": the same URI, matched against the
# same locations, proxied with nothing else
mkdir -p "$work/gateway/logs"
{
    echo "load_module $MODULE;"
    echo "$njs"
    echo "master_process off;"
    echo "daemon off;"
    echo "pid $work/gateway/nginx.pid;"
    echo "error_log $work/gateway/logs/error.log warn;"
    echo "events { worker_connections 256; }"
    echo "http {"
    echo "  access_log off;"
    echo "  upstream app { server 127.0.0.1:$upstream_port; keepalive 16; }"
    if [ -n "$njs" ]; then
        cat "$work/bench/http.conf"
    else
        grep -v '^js_' "$work/bench/http.conf"
    fi
    echo "  server { listen 127.0.0.1:$gateway_port;"
    echo "    keepalive_requests 100000;"
    echo "    proxy_http_version 1.1;"
    echo "    proxy_set_header Connection \"\";"
    echo "    location /plain { proxy_pass http://app; }"
    cat "$work/bench/gateway-locations.conf"
    echo "  }"
    echo "  server { listen 127.0.0.1:$twin_port;"
    echo "    keepalive_requests 100000;"
    echo "    proxy_http_version 1.1;"
    echo "    proxy_set_header Connection \"\";"
    echo "    location /plain { proxy_pass http://app; }"
    awk -f bench/plain-locations.awk "$work/bench/gateway-locations.conf"
    echo "  }"
    echo "}"
} > "$work/gateway/nginx.conf"

"$NGINX" -p "$work/upstream/" -c "$work/upstream/nginx.conf"
cleanup() {
    "$NGINX" -p "$work/upstream/" -c "$work/upstream/nginx.conf" -s stop 2>/dev/null
    if [ -n "${KEEP:-}" ]; then
        echo "callgrind files: $work/cg"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
"$NGINX" -t -q -p "$work/gateway/" -c "$work/gateway/nginx.conf"
mkdir -p "$work/cg"

# a gateway under valgrind now and then misses a SIGQUIT: it is sent
# again every two seconds, and after half a minute the process is killed
# (its counts are dumped already)
stop() {   # pid
    local i
    for i in $(seq 150); do
        kill -0 "$1" 2>/dev/null || break
        [ $((i % 10)) -eq 1 ] && kill -QUIT "$1" 2>/dev/null
        sleep 0.2
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" || true
}

# one gateway under callgrind, COUNT requests: its instruction count
count() {   # name port path count client-options...
    local name=$1 port=$2 path=$3 n=$4 out gw_pid
    shift 4
    out=$work/cg/$name.$n
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$NGINX" -p "$work/gateway/" -c "$work/gateway/nginx.conf" \
        2>"$out.log" &
    gw_pid=$!
    if ! wait_port "$gateway_port"; then
        echo "the gateway did not start: $out.log" >&2
        kill "$gw_pid"
        exit 1
    fi
    if ! perl bench/keepalive-client.pl "$port" "$path" "$n" "$@" \
            2>"$out.status"
    then
        echo "$name: the client failed: $(cat "$out.status")" >&2
        kill "$gw_pid"
        exit 1
    fi
    # counts dumped before the exit ($out.1), while the module is still
    # loaded: callgrind_annotate then has its per-line costs too
    callgrind_control -d "$gw_pid" >/dev/null 2>&1
    stop "$gw_pid"
    awk '/^(summary|totals):/ {print $2; exit}' "$out.1"
}

# wrk arguments of bench/scenarios -> client options
client_args() {
    local args=$1 a
    local -a w out=()
    eval "w=($args)"
    set -- "${w[@]}"
    while [ $# -gt 0 ]; do
        case $1 in
        -H) out+=(-H "$2"); shift 2 ;;
        -s) case $2 in
            */post.lua) out+=(--post '{"amount":10,"currency":"EUR"}') ;;
            */post-new-key.lua) out+=(--post '{"amount":10,"currency":"EUR"}' --new-key) ;;
            *) echo "no client for $2" >&2; exit 1 ;;
            esac
            shift 2 ;;
        *) echo "unknown wrk argument $1" >&2; exit 1 ;;
        esac
    done
    printf '%s\0' "${out[@]}"
}

mapfile -t scenarios < <(grep -v '^#' bench/scenarios | grep -v '^$')
if [ -n "${ONLY:-}" ]; then
    mapfile -t scenarios < <(printf '%s\n' "${scenarios[@]}" | grep -E "^(${ONLY})\|")
fi

cnt() {   # name port path count args -> count (reads client options)
    local name=$1 port=$2 path=$3 n=$4 args=$5
    local -a opts=()
    [ -n "$args" ] && mapfile -d '' -t opts < <(client_args "$args")
    count "$name" "$port" "$path" "$n" "${opts[@]}"
}

per() {   # name port path args -> instructions per request
    local a b
    a=$(cnt "$1" "$2" "$3" "$N" "$4")
    b=$(cnt "$1" "$2" "$3" $((2 * N)) "$4")
    echo $(( (b - a) / N ))
}

plain=$(per plain "$gateway_port" /plain "")

echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), $(valgrind --version), $N and $((2 * N)) requests a scenario, one keep-alive connection"
echo
echo "| scenario | instructions/request | over plain | plain, same request | over plain, same request |"
echo "|---|---:|---:|---:|---:|"
printf '| plain | %d | — | — | — |\n' "$plain"

for s in "${scenarios[@]}"; do
    IFS='|' read -r name path args <<< "$s"
    args=${args//@WORK@/$work}
    if [[ $name == njs-* && -z $njs ]]; then
        continue
    fi
    m=$(per "$name" "$gateway_port" "$path" "$args")
    b=$(per "plain-$name" "$twin_port" "$path" "$args")
    printf '| %s | %d | %+d | %d | %+d |\n' "$name" "$m" $((m - plain)) "$b" $((m - b))
done
