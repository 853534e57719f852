#!/bin/sh
# "make run": serves conf-examples/gateway.conf in the foreground with the
# built module, in front of the demo upstream, with a redis-server of its
# own for the shared rate limits and idempotency keys.  Stop it with
# Ctrl-C (nginx and that redis-server stop together).
#
#   PORT=8080           the gateway (default 8080, or a free port when
#                       8080 is busy: said on the terminal)
#   UPSTREAM_PORT=8081  the demo upstream (default 8081, or a free port)
#   REDIS_PORT=...      the redis-server started for it (default: a free
#                       port; one already listening there is never used)
#
# The running configuration is RUN_DIR/conf (build/run/conf), copied
# from conf-examples/ with the ports written in at each "make run".  Edit
# it there and "make reload" ("util/run.sh reload"): nginx -t, then a
# reload of the running gateway.  Edits to conf-examples/ are picked up
# by the next "make run".
set -e
cd "$(dirname "$0")/.."

NGINX=${NGINX:-/usr/sbin/nginx}
RUN_DIR=${RUN_DIR:-$PWD/build/run}

if [ "$1" = reload ]; then
    if [ ! -f "$RUN_DIR/logs/nginx.pid" ] \
       || ! kill -0 "$(cat "$RUN_DIR/logs/nginx.pid")" 2>/dev/null
    then
        echo "no gateway of \"make run\" is running (no live $RUN_DIR/logs/nginx.pid)" >&2
        exit 1
    fi

    "$NGINX" -t -q -p "$RUN_DIR/" -c conf/nginx.conf
    "$NGINX" -p "$RUN_DIR/" -c conf/nginx.conf -s reload
    echo "reloaded $RUN_DIR/conf/nginx.conf"
    exit 0
fi

MODULE=${1:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}

# a port someone listens on (bind fails); 0 when it is free
busy() {
    perl -MIO::Socket::INET -e \
        'exit(IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                    LocalPort => $ARGV[0], ReuseAddr => 1)
              ? 1 : 0)' "$1"
}

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                     LocalPort => 0, ReuseAddr => 1)->sockport'
}

# pick NAME's port: as asked (and free), or the default, or a free one
pick() {
    name=$1 asked=$2 default=$3

    if [ -n "$asked" ]; then
        if busy "$asked"; then
            echo "$name=$asked: something already listens on 127.0.0.1:$asked; choose another port" >&2
            exit 1
        fi
        echo "$asked"
        return
    fi

    if busy "$default"; then
        port=$(free_port)
        echo "port $default is busy (another program listens on it): $name=$port is used instead; set $name= to choose" >&2
        echo "$port"
        return
    fi

    echo "$default"
}

PORT=$(pick PORT "${PORT:-}" "${APIPOLICY_RUN_DEFAULT_PORT:-8080}")
UPSTREAM_PORT=$(pick UPSTREAM_PORT "${UPSTREAM_PORT:-}" \
                     "${APIPOLICY_RUN_DEFAULT_UPSTREAM_PORT:-8081}")

if [ -n "${REDIS_PORT:-}" ]; then
    REDIS_PORT=$(pick REDIS_PORT "$REDIS_PORT" 0)
else
    REDIS_PORT=$(free_port)
fi

if [ "$PORT" = "$UPSTREAM_PORT" ] || [ "$PORT" = "$REDIS_PORT" ] \
   || [ "$UPSTREAM_PORT" = "$REDIS_PORT" ]
then
    echo "PORT, UPSTREAM_PORT and REDIS_PORT must differ ($PORT, $UPSTREAM_PORT, $REDIS_PORT)" >&2
    exit 1
fi

# the running configuration: the examples with these ports

rm -rf "$RUN_DIR/conf"
mkdir -p "$RUN_DIR/conf" "$RUN_DIR/logs"
cp -r conf-examples/. "$RUN_DIR/conf/"
sed -i -e "s/127\.0\.0\.1:8080/127.0.0.1:$PORT/g" \
       -e "s/127\.0\.0\.1:8081/127.0.0.1:$UPSTREAM_PORT/g" \
       -e "s/127\.0\.0\.1:6379/127.0.0.1:$REDIS_PORT/g" \
       "$RUN_DIR/conf/gateway.conf"

cat > "$RUN_DIR/conf/nginx.conf" <<CONF
load_module $MODULE;
pid logs/nginx.pid;
error_log stderr notice;
include gateway.conf;
CONF
"$NGINX" -t -q -p "$RUN_DIR/" -c conf/nginx.conf

redis_pid=""

if command -v redis-server >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize yes --pidfile "$RUN_DIR/logs/redis.pid" \
        --logfile "$RUN_DIR/logs/redis.log" --dir "$RUN_DIR/logs" >/dev/null
    redis_pid=$RUN_DIR/logs/redis.pid
    echo "redis-server on 127.0.0.1:$REDIS_PORT (its own; stopped with the gateway)"
else
    echo "redis-server is not installed: the gateway limits on its own (said once in its log)"
fi

stop() {
    if [ -n "$redis_pid" ] && [ -f "$redis_pid" ]; then
        kill "$(cat "$redis_pid")" 2>/dev/null || true
    fi
}
trap stop EXIT INT TERM

echo "demo upstream on 127.0.0.1:$UPSTREAM_PORT"
echo "apipolicy gateway on http://127.0.0.1:$PORT (Ctrl-C to stop)"
echo "running configuration: $RUN_DIR/conf/gateway.conf (edit it, then \"make reload\")"
"$NGINX" -p "$RUN_DIR/" -c conf/nginx.conf -g 'daemon off;'
