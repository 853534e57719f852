#!/bin/sh
# Serves conf-examples/gateway.conf on 127.0.0.1:8080 (in front of the demo
# upstream on 127.0.0.1:8081) in the foreground, with the built module.
# Stop it with Ctrl-C.
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
echo "apipolicy gateway on http://127.0.0.1:8080 (Ctrl-C to stop)"
exec "$NGINX" -p "$prefix/" -c conf/nginx.conf -g 'daemon off;'
