#!/bin/bash
# Installs build/deb/libnginx-mod-http-apipolicy_*.deb ("make deb") with
# apt, checks that it is laid out and enabled the way Debian's own
# libnginx-mod-* packages are, runs "nginx -t" on the system configuration
# (which loads it through /etc/nginx/modules-enabled) and on one that uses
# apipolicy's directives, then purges it and checks nothing is left.
# Called by "make test-deb" (CI); needs root or sudo.
#
# Only /etc/nginx and the package database are touched: the suites run
# their own nginx with their own configuration and never read /etc/nginx.
# The package's scripts ask a running system nginx to reload and never start
# one; if a system nginx starts anyway, it is stopped again.  A lock keeps
# two runs on one machine from installing and purging under each other.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

pkg=libnginx-mod-http-apipolicy
conf=mod-http-apipolicy.conf
so=/usr/lib/nginx/modules/ngx_http_apipolicy_module.so
enabled=/etc/nginx/modules-enabled/50-$conf

deb=$(ls build/deb/${pkg}_*.deb 2>/dev/null | sort -V | tail -1)
if [ -z "$deb" ]; then
    echo "test-deb: no build/deb/${pkg}_*.deb (make deb)" >&2
    exit 1
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
apt=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get
     -o DPkg::Lock::Timeout=600 -y -qq)

exec 9> /tmp/apipolicy-test-deb.lock
flock -w 900 9 || { echo "test-deb: another run holds the lock" >&2; exit 1; }

if dpkg-query -W -f='${Status}' $pkg 2>/dev/null | grep -q installed; then
    echo "test-deb: $pkg is already installed here; not touching it" >&2
    exit 1
fi

nginx_running() {
    [ -s /run/nginx.pid ] && $SUDO kill -0 "$(cat /run/nginx.pid)" 2>/dev/null
}
was_running=no
nginx_running && was_running=yes

tmp=$(mktemp -d)
rc=0
fail() { echo "not ok - $*"; rc=1; }
ok()   { echo "ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

purge() {
    "${apt[@]}" purge $pkg > "$tmp/purge.log" 2>&1 \
        || { cat "$tmp/purge.log"; fail "apt-get purge $pkg"; }
}

ours=no
finish() {
    if [ $ours = yes ] \
       && dpkg-query -W -f='${Status}' $pkg 2>/dev/null | grep -q installed; then
        purge
    fi
    if [ $was_running = no ] && nginx_running; then
        echo "test-deb: a system nginx started meanwhile; stopping it"
        $SUDO nginx -s quit 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap finish EXIT

echo "test-deb: $deb"

# the package's version is the module's (src/ngx_http_apipolicy.h)
version=$(dpkg-deb -f "$deb" Version)
module_version=$(sed -n 's/^#define NGX_HTTP_APIPOLICY_VERSION  *"\(.*\)"/\1/p' \
                 src/ngx_http_apipolicy.h)
check "Version $version is the module's $module_version (debian/changelog)" \
    test "${version%-*}" = "$module_version"

# what dpkg-shlibdeps and dh_nginx put in the control file
depends=$(dpkg-deb -f "$deb" Depends)
abi=$(dpkg-query -W -f='${Provides}' nginx | grep -o 'nginx-abi-[^ ,]*')
check "Depends: $abi, the ABI the installed nginx provides" \
    grep -qw -- "$abi" <<< "$depends"
check "Depends names no libjwt (not linked)" \
    bash -c '! grep -q libjwt <<< "$1"' _ "$depends"

ours=yes
if ! "${apt[@]}" install "./$deb" > "$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "apt-get install ./$deb"
    exit 1
fi
ok "apt-get install ./$deb"

check "$so installed" test -f $so
check "/usr/share/nginx/modules-available/$conf installed" \
    grep -qx "load_module modules/ngx_http_apipolicy_module.so;" \
        /usr/share/nginx/modules-available/$conf
check "the examples and the Prometheus alerts in /usr/share/doc/$pkg" \
    test -f /usr/share/doc/$pkg/examples/gateway.conf \
         -a -f /usr/share/doc/$pkg/examples/contrib/prometheus/alerts.yml
check "$enabled links to it" \
    test "$(readlink $enabled)" = /usr/share/nginx/modules-available/$conf

# the system configuration, which includes modules-enabled/*.conf
if out=$($SUDO nginx -t 2>&1); then
    ok "nginx -t (/etc/nginx/nginx.conf)"
else
    fail "nginx -t (/etc/nginx/nginx.conf)"
    echo "$out"
fi
check "nginx -T shows the module loaded through modules-enabled" \
    bash -c "$SUDO nginx -T 2>/dev/null | grep -q '^# configuration file $enabled:'"

# apipolicy's directives, with the module loaded the packaged way only
# (load_module modules/..., relative to the packaged nginx's prefix)
mkdir -p "$tmp/conf" "$tmp/logs"
cat > "$tmp/conf/nginx.conf" <<CONF
user www-data;
include /etc/nginx/modules-enabled/*.conf;
pid $tmp/logs/nginx.pid;
error_log $tmp/logs/error.log;
events {}
http {
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=60r/m burst=10;
    server {
        listen 127.0.0.1:1;
        location / {
            apipolicy_cors_origins https://app.example.com;
            apipolicy_ratelimit zone=api key=\$binary_remote_addr;
        }
        location = /metrics {
            apipolicy_status prometheus;
        }
    }
}
CONF
if out=$($SUDO nginx -t -c "$tmp/conf/nginx.conf" 2>&1); then
    ok "nginx -t with apipolicy directives"
else
    fail "nginx -t with apipolicy directives"
    echo "$out"
fi

purge
ok "apt-get purge $pkg"
check "$so removed" test ! -e $so
check "no $enabled* left" \
    bash -c "! ls $enabled* >/dev/null 2>&1"
if out=$($SUDO nginx -t 2>&1); then
    ok "nginx -t after the purge"
else
    fail "nginx -t after the purge"
    echo "$out"
fi

[ $rc -eq 0 ] && echo "test-deb: ok" || echo "test-deb: FAILED"
exit $rc
