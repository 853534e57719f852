#!/bin/bash
# Two builds of the module side by side: bench/run.sh with BEFORE, then
# with AFTER, one round each, repeated; every round measures each scenario
# against plain nginx in the same run, and the table gives the median of
# each build's ratios, then each round's ratio.  For a change that must not
# cost speed.
#
#   BEFORE=old.so AFTER=build/nginx/objs/ngx_http_apipolicy_module.so \
#       bench/compare.sh [seconds-per-round] [rounds]
#   ONLY='full-stack|jwt-hs256' ...      a subset of bench/scenarios
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROUND=${1:-5}
ROUNDS=${2:-3}
BEFORE=${BEFORE:?the module to compare with: BEFORE=path/to/module.so}
AFTER=${AFTER:-$PWD/build/nginx/objs/ngx_http_apipolicy_module.so}

declare -A ratios cpuratios
names=()
for round in $(seq "$ROUNDS"); do
    for build in before after; do
        if [ $build = before ]; then module=$BEFORE; else module=$AFTER; fi
        while IFS='|' read -r _ name _ _ ratio _ cpuratio _; do
            name=${name// /}
            ratio=${ratio//[ %]/}
            cpuratio=${cpuratio//[ %]/}
            [ -n "$name" ] || continue
            [ "$round" = 1 ] && [ $build = before ] && names+=("$name")
            ratios[$build.$name]="${ratios[$build.$name]:-} $ratio"
            cpuratios[$build.$name]="${cpuratios[$build.$name]:-} $cpuratio"
        done < <(MODULE=$module bench/run.sh "$SECONDS_PER_ROUND" 1 2>/dev/null \
                 | grep '^| [a-z]' | grep -v '^| scenario')
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "$ROUNDS rounds of ${SECONDS_PER_ROUND}s a scenario, each build's ratio to plain nginx in its own run, medians"
echo
echo "(req/s ratio; CPU: plain's worker CPU a request over the scenario's, which"
echo "other processes on the machine disturb less)"
echo
echo "| scenario | before | after | after - before | CPU before | CPU after | CPU after - before |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
    b=$(median <<< "${ratios[before.$name]}")
    a=$(median <<< "${ratios[after.$name]}")
    cb=$(median <<< "${cpuratios[before.$name]}")
    ca=$(median <<< "${cpuratios[after.$name]}")
    printf '| %s | %.1f%% | %.1f%% | %+.1f | %.1f%% | %.1f%% | %+.1f |\n' \
        "$name" "$b" "$a" "$(echo "$a - $b" | bc -l)" \
        "$cb" "$ca" "$(echo "$ca - $cb" | bc -l)"
done

# the rounds themselves: how far apart the rounds of one build are tells
# what a difference of medians can mean (two runs of the same build
# differ by about a point on a 2-core VM)
echo
echo "Each round's req/s ratio, lowest to highest:"
echo
for name in "${names[@]}"; do
    for build in before after; do
        printf -- '- %s, %s: %s\n' "$name" "$build" \
            "$(tr ' ' '\n' <<< "${ratios[$build.$name]}" | grep -v '^$' | sort -g \
               | awk '{if (NR > 1) printf ", "; printf "%.1f", $1}')"
    done
done
