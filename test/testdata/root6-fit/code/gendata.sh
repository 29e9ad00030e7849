#!/usr/bin/env bash
# gendata.sh EVENTS OUTPUT: writes EVENTS toy events, one value per line, to
# OUTPUT, like the gendata step of REANA's root6-roofit demo but without
# ROOT: 80% "signal" around 5.0 (width 0.8) on a flat "background" over
# [0, 10). The generator has a fixed seed, so the output depends on EVENTS
# only. Needs bash and awk.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: gendata.sh EVENTS OUTPUT" >&2
    exit 2
fi
events=$1 out=$2
case $events in
'' | *[!0-9]*)
    echo "gendata.sh: EVENTS must be a non-negative integer, got '$events'" >&2
    exit 2
    ;;
esac
events=$((10#$events))

dir=$(dirname -- "$out")
mkdir -p -- "$dir"

# Park-Miller "minimal standard" generator: every product stays below 2^53,
# so awk's doubles compute it exactly and every awk gives the same numbers.
awk -v n="$events" '
function rnd() {
    seed = (16807 * seed) % 2147483647
    return seed / 2147483647
}
BEGIN {
    seed = 20240611
    for (i = 0; i < n; i++) {
        if (rnd() < 0.8) {
            s = 0
            for (k = 0; k < 12; k++) s += rnd()  # Irwin-Hall: close to a Gaussian
            x = 5 + 0.8 * (s - 6)
        } else {
            x = 10 * rnd()
        }
        printf "%.6f\n", x
    }
}' >"$out"

echo "generated $events events into $out"
