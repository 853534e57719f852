#!/bin/sh
# Serves conf-examples/gateway.conf on 127.0.0.1:8080 (in front of the demo
# upstream on 127.0.0.1:8081) in the foreground, with the built module, and
# a throw-away redis-server on 127.0.0.1:6379 for the shared rate limits
# (unless one already answers there; without redis-server the gateway
# limits on its own and says so once in its log).  Stop it with Ctrl-C.
set -e
cd "$(dirname "$0")/.."
MODULE=${1:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
NGINX=${NGINX:-/usr/sbin/nginx}
prefix=$PWD/build/run
mkdir -p "$prefix/conf" "$prefix/logs"
cp -r conf-examples/. "$prefix/conf/"
cat > "$prefix/conf/nginx.conf" <<CONF
load_module $MODULE;
pid logs/nginx.pid;
error_log stderr notice;
include gateway.conf;
CONF
"$NGINX" -t -q -p "$prefix/" -c conf/nginx.conf

redis_pid=""
if command -v redis-server >/dev/null 2>&1 \
   && ! redis-cli -p 6379 ping >/dev/null 2>&1
then
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$prefix/logs/redis.pid" \
        --logfile "$prefix/logs/redis.log" --dir "$prefix/logs" >/dev/null
    redis_pid=$prefix/logs/redis.pid
    echo "redis-server on 127.0.0.1:6379 (stopped with the gateway)"
fi

stop() {
    [ -n "$redis_pid" ] && [ -f "$redis_pid" ] && kill "$(cat "$redis_pid")" 2>/dev/null
    true
}
trap stop EXIT INT TERM

echo "apipolicy gateway on http://127.0.0.1:8080 (Ctrl-C to stop)"
"$NGINX" -p "$prefix/" -c conf/nginx.conf -g 'daemon off;'
