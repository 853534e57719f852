#!/bin/bash
# apipolicy rate limits across gateways: N separate nginx instances (1 or
# 2 workers each) on loopback sharing one redis-server, driven at once by
# a paced load generator (bench/cluster-load.pl), each scenario for a
# bounded time; prints admitted vs limit per scenario.
#
#   bench/cluster.sh                 every scenario (about 4 minutes)
#   ONLY='even-2|uneven' bench/cluster.sh
#   SECONDS_PER_RUN=10 bench/cluster.sh
#
# The limit: a 50 r/s tier (r/s scenarios) or a 1200 r/m tier (r/m), one
# key, 3x the limit in total, for SECONDS_PER_RUN whole seconds from a
# second boundary (r/m: from a minute boundary, within that minute).  A
# fresh key and a zone of its own per scenario, so every run starts on all
# gateways at once; "first" is what all gateways admitted together in the
# key's first window (1 s), against the quota.
#
# The "keys" scenario measures the sync itself: 2 gateways, wrk spreading
# requests over 100,000 keys per gateway; it reports the keys pushed per
# interval, the gateways' CPU with the sync against the same load with
# sync=off, Redis commands and Redis CPU per second, and whether every key
# reached Redis within two intervals of the end of the load.
set -euo pipefail
cd "$(dirname "$0")/.."

NGINX=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RATE_RS=50                  # the r/s tier
RATE_RM=1200                # the r/m tier

[ -f "$MODULE" ] || { echo "build the module first: make module"; exit 1; }
command -v redis-server >/dev/null || { echo "apt-get install redis-server"; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"                  # the workers (nobody) read ok.txt
pids=()
cleanup() {
    for p in "$work"/gw*/logs/nginx.pid; do
        [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
    done
    [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                     LocalPort => 0, ReuseAddr => 1)->sockport'
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log" \
    --dir "$work" >/dev/null
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
rcli() { redis-cli -p "$rport" "$@"; }

echo "ok" > "$work/ok.txt"
ports=()

# start_gateways N WORKERS SYNC ZONE
start_gateways() {
    local n=$1 workers=$2 sync=$3 zone=$4 i dir port
    ports=()
    for i in $(seq "$n"); do
        dir=$work/gw$i
        rm -rf "$dir"; mkdir -p "$dir/conf" "$dir/logs"
        port=$(free_port)
        ports+=("$port")
        cat > "$dir/conf/nginx.conf" <<EOF
load_module $MODULE;
worker_processes $workers;
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 1024; }
http {
    access_log off;
    apipolicy_redis 127.0.0.1:$rport timeout=500ms;
    apipolicy_ratelimit_zone $zone:64m sync=$sync;
    apipolicy_ratelimit_tier default rate=${RATE_RS}r/s;
    apipolicy_ratelimit_tier rs rate=${RATE_RS}r/s;
    apipolicy_ratelimit_tier rm rate=${RATE_RM}r/m;
    apipolicy_ratelimit_tier keys rate=1000r/m;
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 1000000;
        location /rs { apipolicy_ratelimit zone=$zone key=\$arg_k tier=rs; alias $work/ok.txt; }
        location /rm { apipolicy_ratelimit zone=$zone key=\$arg_k tier=rm; alias $work/ok.txt; }
        location /keys { apipolicy_ratelimit zone=$zone key=\$arg_k tier=keys; alias $work/ok.txt; }
    }
}
EOF
        "$NGINX" -p "$dir/" -c conf/nginx.conf
    done
    sleep 2.5                   # every gateway in the registry
}

stop_gateways() {
    local p
    for p in "$work"/gw*/logs/nginx.pid; do
        [ -f "$p" ] && kill -QUIT "$(cat "$p")" 2>/dev/null || true
    done
    sleep 0.5
    rm -rf "$work"/gw*
}

results=()

# run NAME GATEWAYS WORKERS SYNC PATH SHARES...  (shares: % of the load)
run() {
    local name=$1 n=$2 workers=$3 sync=$4 path=$5; shift 5
    local shares=("$@") rates=() total limit out adm first quota align s secs i
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ ^(${ONLY})$ ]]; then return; fi

    if [ "$path" = /rm ]; then
        # 3x the limit's pace for 30 s within one minute: the quota is
        # used up halfway, and the key's first window is the whole run
        quota=$RATE_RM; total=$((3 * RATE_RM / 60)); align=60
        secs=30; limit=$RATE_RM
    else
        quota=$RATE_RS; total=$((3 * RATE_RS)); align=1
        secs=$SECONDS_PER_RUN; limit=$((RATE_RS * secs))
    fi
    for s in "${shares[@]}"; do
        rates+=("$(echo "$total * $s / 100" | bc -l)")
    done

    start_gateways "$n" "$workers" "$sync" "z$RANDOM"
    echo "== $name: $n gateways x $workers workers, sync=$sync, $path, load ${shares[*]} % of ${total} r/s" >&2
    out=$(perl bench/cluster-load.pl --ports "$(IFS=,; echo "${ports[*]}")" \
              --rates "$(IFS=,; echo "${rates[*]}")" --seconds "$secs" \
              --path "$path" --key "key$RANDOM" --align "$align")
    stop_gateways
    echo "$out" | grep -v '^gw' >&2
    [ -n "${VERBOSE:-}" ] && echo "$out" | grep '^gw' >&2
    adm=$(awk '/^total/ {print $3}' <<< "$out")
    first=$(awk '/^total/ {print $7}' <<< "$out")
    [ "$path" = /rm ] && first=$adm
    results+=("$(printf '| %s | %s x %s | %s | %s | %s | %s | %d | %s | %+.1f%% | %d (%.2f x quota) |' \
        "$name" "$n" "$workers" "$sync" "$path" "${shares[*]}" \
        "$(echo "$total * $secs" | bc)" "$adm" "$limit" \
        "$(echo "($adm - $limit) * 100 / $limit" | bc -l)" \
        "$first" "$(echo "$first / $quota" | bc -l)")")
}

# the sync at scale: 2 gateways, 100,000 keys each, wrk at full speed
keys_run() {
    local sync=$1 secs=$2 conns=$3 pids cpu0 cpu1 r0 r1 c1 early late base
    start_gateways 2 1 "$sync" "zkeys$RANDOM"
    base=$RANDOM$RANDOM
    # both gateways cycle through the same 100,000 keys
    cat > "$work/keys.lua" <<EOF
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", "/keys?k=k$base-" .. (n % 100000))
end
EOF
    cputime() {   # pids... -> CPU ticks (1/100 s)
        local t=0 p
        for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
        echo $t
    }
    # how many of the keys (a KEYS pattern; with a count N, the pattern
    # with KEY replaced by 0 .. N-1) hold both gateways' counts
    both() {
        rcli EVAL "local n, keys = 0, {}
            if ARGV[2] == nil then keys = redis.call('KEYS', ARGV[1])
            else for i = 0, tonumber(ARGV[2]) - 1 do
                for _, k in ipairs(redis.call('KEYS', (string.gsub(ARGV[1], 'KEY', i)))) do
                    keys[#keys + 1] = k end end end
            local seen = {}
            for _, key in ipairs(keys) do
                local tag = string.match(key, '{(.*)}')
                for _, f in ipairs(redis.call('HKEYS', key)) do
                    local k = string.sub(f, 1, 2)
                    if k ~= 'd:' and k ~= 'r:' and f ~= 't0' then
                        seen[tag] = seen[tag] or {}
                        seen[tag][f] = true
                    end
                end
            end
            for _, g in pairs(seen) do
                local c = 0
                for _ in pairs(g) do c = c + 1 end
                if c >= 2 then n = n + 1 end
            end
            return n" 0 "$@"
    }
    pids=$(pgrep -P "$(cat "$work/gw1/logs/nginx.pid")"; pgrep -P "$(cat "$work/gw2/logs/nginx.pid")")
    rcli CONFIG RESETSTAT >/dev/null
    cpu0=$(cputime $pids); r0=$(cputime "$(cat "$work/redis.pid")")
    wrk -t1 -c"$conns" -d"${secs}s" -s "$work/keys.lua" "http://127.0.0.1:${ports[0]}/" > "$work/wrk1" 2>&1 &
    wrk -t1 -c"$conns" -d"${secs}s" -s "$work/keys.lua" "http://127.0.0.1:${ports[1]}/" > "$work/wrk2" 2>&1
    wait
    cpu1=$(cputime $pids); r1=$(cputime "$(cat "$work/redis.pid")")
    c1=$(rcli INFO commandstats | awk -F'[=,:]' '/^cmdstat_evalsha/ {print $3}')
    sleep 0.4                   # two intervals after the load ended
    early=$(both "*rl:{zkeys*:keys:k$base-KEY}:*" 200)
    sleep 3
    late=$(both "*rl:{zkeys*:k$base-*")
    echo "keys sync=$sync, $conns connections: $(awk '/Requests\/sec/ {print $2}' "$work/wrk1") + $(awk '/Requests\/sec/ {print $2}' "$work/wrk2") req/s;" \
         "gateways' CPU $(echo "($cpu1 - $cpu0) / $secs" | bc -l | xargs printf '%.1f')% of a core;" \
         "Redis CPU $(echo "($r1 - $r0) / $secs" | bc -l | xargs printf '%.1f')%;" \
         "EVALSHA ${c1:-0} ($(echo "${c1:-0} / $secs" | bc) /s, $(echo "${c1:-0} / $secs / 5" | bc) a 200 ms interval);" \
         "0.4 s after the load: $early of the 200 keys k-0..k-199 hold both gateways' counts;" \
         "3.4 s after: $late of 100000" >&2
    stop_gateways
}

run single-1       1 1 200ms /rs 100
run even-2         2 1 200ms /rs 50 50
run even-2x2w      2 2 200ms /rs 50 50
run even-4         4 1 200ms /rs 25 25 25 25
run uneven-2       2 1 200ms /rs 90 10
run uneven-4       4 1 200ms /rs 90 3.34 3.33 3.33
run sync1s-2       2 1 1s    /rs 50 50
run sync1s-uneven  2 1 1s    /rs 90 10
run rm-2           2 1 200ms /rm 50 50
run rm-4-uneven    4 1 200ms /rm 90 3.34 3.33 3.33

echo
echo "| scenario | gateways x workers | sync | tier | load % | sent | admitted | limit | vs limit | first window (quota ${RATE_RS}/s, ${RATE_RM}/m) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"

if [ -z "${ONLY:-}" ] || [[ keys =~ ^(${ONLY})$ ]]; then
    command -v wrk >/dev/null || { echo "apt-get install wrk"; exit 1; }
    keys_run off 5 8            # the same load without the sync
    keys_run 200ms 5 8          # as fast as the machine goes
fi
