#!/bin/bash
# Checks the Docker image's layout without Docker: replays the runtime stage
# of the Dockerfile (its last FROM) into a temporary root and runs the image's
# "nginx -t" there, with this checkout's module and Debian's nginx (the
# package the image installs).  Called by "make test-docker".
#
#   util/test-docker.sh [MODULE]      (TAP; t/003-docker.t runs it)
#
# The root starts with what the image's nginx package puts in /etc/nginx and
# its modules link (/usr/share/nginx/modules -> /usr/lib/nginx/modules).
# Replayed: COPY (sources from the build context, or from the build stage's
# WORKDIR for --from=build, which is this checkout built by "make module"),
# RUN sed -i, RUN nginx -t.  RUN apt-get install is checked instead: every
# library the module needs must come from a package it installs.  Any other
# instruction fails the test, so a change to the Dockerfile that this script
# cannot follow is noticed.  Also checked: each EXPOSEd port is one the
# configuration listens on, on every address.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

MODULE=${1:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}
NGINX=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
DOCKERFILE=${DOCKERFILE:-Dockerfile}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# TAP, for prove (t/003-docker.t) and for reading
rc=0
n=0
fail() { n=$((n + 1)); echo "not ok $n - $*"; rc=1; }
ok()   { n=$((n + 1)); echo "ok $n - $*"; }

# the Dockerfile as one instruction a line: continuations joined, comments
# and blank lines dropped
instructions=$(sed -e '/^[[:space:]]*#/d' "$DOCKERFILE" \
               | sed -e ':a' -e '/\\$/{N; s/\\\n/ /; ba' -e '}' \
               | sed -e '/^[[:space:]]*$/d')

stages=$(grep -c '^FROM ' <<< "$instructions")
runtime=$(awk -v n="$stages" '/^FROM /{i++} i==n' <<< "$instructions")
build_workdir=$(awk -v n="$stages" '/^FROM /{i++} i<n && /^WORKDIR /{w=$2}
                                    END{print w}' <<< "$instructions")
echo "# replaying stage $stages of $DOCKERFILE into $root"

# the image's nginx package: /etc/nginx and the modules link
dpkg-query -L nginx nginx-common 2>/dev/null \
    | grep -E '^/etc/nginx/|^/usr/share/nginx/modules$' \
    | while read -r f; do
          if [ -L "$f" ] || [ -f "$f" ]; then
              mkdir -p "$root$(dirname "$f")"
              cp -a "$f" "$root$f"
          fi
      done
mkdir -p "$root/usr/lib/nginx/modules" "$root/etc/nginx"

packages=""
exposed=""
tested=no

copy() {
    local from="" args=() a
    for a in "$@"; do
        case $a in
            --from=*) from=${a#--from=} ;;
            --chown=*|--chmod=*|--link) ;;
            *) args+=("$a") ;;
        esac
    done
    local dest=${args[-1]} nsrc=$((${#args[@]} - 1)) srcs=() s
    for s in "${args[@]:0:$nsrc}"; do
        if [ -n "$from" ]; then
            # the build stage ran "make module" in its WORKDIR, a copy of
            # this checkout
            s=${s/#$build_workdir\//}
        fi
        # shellcheck disable=SC2206
        local matches=($s)          # glob, as COPY does
        [ -e "${matches[0]}" ] || { fail "COPY: $s not found"; return; }
        srcs+=("${matches[@]}")
    done
    for s in "${srcs[@]}"; do
        if [ -d "$s" ]; then
            mkdir -p "$root$dest"
            cp -a "$s/." "$root$dest/"
        elif [[ $dest == */ ]] || [ ${#srcs[@]} -gt 1 ]; then
            mkdir -p "$root$dest"
            cp -a "$s" "$root$dest/"
        else
            mkdir -p "$root$(dirname "$dest")"
            cp -a "$s" "$root$dest"
        fi
    done
    ok "COPY ${from:+--from=$from }${args[*]}"
}

while read -r op rest; do
    case $op in
        FROM) ;;
        COPY)
            eval "set -- $rest"
            copy "$@"
            ;;
        RUN)
            if [[ $rest == *"apt-get install"* ]]; then
                packages=$(sed -e 's/.*apt-get install//' -e 's/&&.*//' \
                           <<< "$rest" | tr ' ' '\n' | grep -v '^-' \
                           | grep -v '^$')
                ok "RUN apt-get install (packages: $(echo $packages))"
            elif [[ $rest == "sed -i "* ]]; then
                eval "set -- ${rest#sed -i }"
                expr=$1
                shift
                files=()
                for f in "$@"; do files+=("$root$f"); done
                if sed -i "$expr" "${files[@]}"; then
                    ok "RUN sed -i $expr $*"
                else
                    fail "RUN sed -i $expr $*"
                fi
            elif [ "$rest" = "nginx -t" ]; then
                tested=yes
            else
                fail "cannot replay RUN $rest"
            fi
            ;;
        EXPOSE) exposed="$exposed $rest" ;;
        CMD|LABEL|ENV|STOPSIGNAL) ;;
        *) fail "cannot replay $op $rest" ;;
    esac
done <<< "$runtime"

[ -f "$root/usr/lib/nginx/modules/ngx_http_apipolicy_module.so" ] \
    && cp "$MODULE" "$root/usr/lib/nginx/modules/ngx_http_apipolicy_module.so"

# the image's nginx -t, in the replayed root: nginx's prefix and its
# configuration file moved there, every path in the configuration
# relative to one of them
[ $tested = yes ] || fail "the Dockerfile runs no nginx -t"
cmd=("$NGINX" -p "$root/usr/share/nginx/" -c "$root/etc/nginx/nginx.conf")
if out=$("${cmd[@]}" -t 2>&1); then
    ok "nginx -t in the replayed root"
else
    fail "nginx -t in the replayed root"
    sed 's/^/# /' <<< "$out"
fi

dump=$("${cmd[@]}" -T 2>/dev/null)
for port in $exposed; do
    if grep -Eq "^[[:space:]]*listen[[:space:]]+(\*:|0\.0\.0\.0:|\[::\]:)?${port}[[:space:];]" \
            <<< "$dump"
    then
        ok "EXPOSE $port: listened on, on every address"
    else
        fail "EXPOSE $port: no 'listen $port;' in the image's configuration"
    fi
done

# every library the module links comes from a package the image installs
for lib in $(readelf -d "$MODULE" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1)
    if [ "$pkg" = libc6 ] || grep -qx "$pkg" <<< "$packages"; then
        ok "$lib: $pkg installed by the image"
    else
        fail "$lib (package ${pkg:-unknown}) is not installed by the image"
    fi
done
for pkg in $packages; do
    apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 \
        || fail "the image installs $pkg, which Debian's archive does not have"
done

echo "1..$n"
exit $rc
