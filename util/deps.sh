#!/bin/sh
# Installs the Debian packages that are missing; does nothing when all are
# there.  Needs root (or sudo) only when something is missing.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# several builds may install at once: wait for dpkg's lock instead of failing
lock="-o DPkg::Lock::Timeout=600"
$SUDO apt-get $lock update -qq || exit 1
$SUDO apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null \
    || exit 1
# the packages start a system nginx on port 80 and a Prometheus server on
# 9090: apipolicy runs its own nginx, and the tests need only promtool
for svc in nginx prometheus; do
    if command -v systemctl >/dev/null 2>&1 \
       && systemctl is-active -q "$svc" 2>/dev/null
    then
        $SUDO systemctl stop "$svc" || true
    fi
done
exit 0
