#!/bin/bash
# usage: asan-nginx.sh DIR CC CC_OPT LD_OPT
#
# Puts nginx's full source tree in DIR and configures it for the sanitizer
# build ("make test-asan"): the configure arguments of Debian's binary
# (nginx -V) without its dynamic modules, with CC, CC_OPT and LD_OPT, and
# apipolicy as a dynamic module of that build.
#
# The source: Debian 12's nginx 1.22.1 from the archive ("apt-get
# source", Debian's patches applied), the version of the installed nginx
# when the archive still has it.  The deb-src lines go into a private apt
# configuration under DIR's parent, so the machine's sources.list and
# package lists are left as they are.  When the archive cannot be reached,
# the oldest upstream tarball (the nearest to 1.22.1) in $NGINX_TARBALLS
# (default /work/shared/nginx) is used instead.
set -euo pipefail

dest=$1 cc=$2 cc_opt=$3 ld_opt=$4
top=$(cd "$(dirname "$0")/.." && pwd)
nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}
work=$(dirname "$dest")/apt
mkdir -p "$work/lists/partial"
rm -rf "$dest"

cat > "$work/sources.list" <<END
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm-updates main
END
apt=(-o "Dir::Etc::SourceList=$work/sources.list"
     -o "Dir::Etc::SourceParts=$work/none"
     -o "Dir::State::Lists=$work/lists"
     -o "Debug::NoDropPrivs=1" -o "APT::Sandbox::User=root")

from_debian() {
    apt-get "${apt[@]}" -qq update || return 1
    installed=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
    # the installed version first, then the others the archive lists
    versions=$( { [ -n "$installed" ] && echo "$installed";
                  apt-cache "${apt[@]}" showsrc nginx \
                      | sed -n 's/^Version: //p' | sort -rV; } \
                | awk '!seen[$0]++' | grep '^1\.22\.1-' || true)
    for v in $versions; do
        rm -rf "$work/get" && mkdir -p "$work/get"
        if (cd "$work/get" && apt-get "${apt[@]}" -qq source "nginx=$v") \
               >"$work/get.log" 2>&1; then
            mv "$work/get/nginx-1.22.1" "$dest"
            echo "nginx source: Debian nginx $v"
            return 0
        fi
        echo "nginx source: $v not downloadable, trying the next version"
    done
    return 1
}

from_tarball() {
    tarball=$(ls "${NGINX_TARBALLS:-/work/shared/nginx}"/nginx-*.tar.gz \
                  2>/dev/null | sort -V | head -1)
    [ -n "$tarball" ] || return 1
    rm -rf "$work/get" && mkdir -p "$work/get"
    tar -C "$work/get" -xzf "$tarball"
    mv "$work/get"/nginx-* "$dest"
    echo "nginx source: $tarball (Debian's archive unreachable)"
}

from_debian || from_tarball || {
    echo "nginx source: neither Debian's archive nor a tarball in" \
         "${NGINX_TARBALLS:-/work/shared/nginx} is available" >&2
    exit 1
}
rm -rf "$work/get"

# Debian's binary's arguments, less its compiler flags and dynamic modules
eval "debian=($("$nginx_bin" -V 2>&1 | sed -n 's/^configure arguments: //p'))"
args=()
for a in "${debian[@]}"; do
    case $a in
    --with-cc-opt=*|--with-ld-opt=*|--with-cc=*|*=dynamic|--add-dynamic-module=*|--add-module=*)
        ;;
    *)
        args+=("$a")
        ;;
    esac
done

cd "$dest"
./configure "${args[@]}" --with-cc="$cc" --with-cc-opt="$cc_opt" \
    --with-ld-opt="$ld_opt" --add-dynamic-module="$top" \
    > ../configure.log 2>&1 || { tail -30 ../configure.log; exit 1; }
