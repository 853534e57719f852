#!/bin/sh
# Lists the module's C functions longer than LIMIT lines (default 100),
# longest first, counted from the line of the opening "{" to the line of
# the closing "}" as nginx's style puts them (in column 0), and prints
# how many functions there are in all.
#
#   util/function-lengths.sh [LIMIT]

LIMIT=${1:-100}
cd "$(dirname "$0")/.."

awk -v limit="$LIMIT" '
FNR == 1         { name = "" }
/^[a-z_].*\(/ && prev ~ /^(static )?[a-z_]/ {
                   name = $0; sub(/\(.*/, "", name) }
/^\{/            { start = FNR; open = 1 }
/^\}/ && open    { n++; len = FNR - start; open = 0
                   if (len > limit) {
                       long++
                       printf "%5d %s %s\n", len, FILENAME, name | "sort -rn"
                   } }
                 { prev = $0 }
END              { close("sort -rn")
                   printf "%d of %d functions over %d lines\n",
                          long, n, limit }
' src/*.c ngx_http_apipolicy_module.c
