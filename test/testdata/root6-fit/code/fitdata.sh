#!/usr/bin/env bash
# fitdata.sh DATA PLOT: "fits" the events that gendata.sh wrote to DATA
# with a Gaussian signal on a flat background (background from the
# sidebands, then background-subtracted moments) and draws their histogram
# with the fitted curve as a PNG image in PLOT, like the fitdata step of
# REANA's root6-roofit demo but without ROOT. The output depends on the
# input only. Needs bash, awk and od.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: fitdata.sh DATA PLOT" >&2
    exit 2
fi
data=$1 plot=$2
[ -r "$data" ] || { echo "fitdata.sh: cannot read $data" >&2; exit 1; }

W=100 H=60 # image size in pixels; one histogram bin per column over [0, 10)

# awk prints the fit result on the first line, then H rows of W grey levels.
result=$(awk -v W="$W" -v H="$H" '
NF { x[n++] = $1 + 0 }
END {
    if (n < 2) { print "fitdata.sh: need at least 2 events, got " n + 0 > "/dev/stderr"; exit 1 }
    lo = 0; hi = 10
    mu = 0; for (i = 0; i < n; i++) mu += x[i]; mu /= n
    sd = 0; for (i = 0; i < n; i++) sd += (x[i] - mu) ^ 2; sd = sqrt(sd / n)
    for (it = 0; it < 10; it++) {        # clip at 2.5 sigma, correct the width
        s = 0; ss = 0; m = 0
        for (i = 0; i < n; i++) if ((x[i] - mu) ^ 2 < 6.25 * sd * sd) { s += x[i]; ss += x[i] * x[i]; m++ }
        if (m < 2) break
        mu = s / m
        v = ss / m - mu * mu; if (v < 0) v = 0
        sd = sqrt(v) / 0.954598         # sd of a Gaussian truncated at 2.5 sigma
        if (sd <= 0) break
    }
    bw = (hi - lo) / W
    for (c = 0; c < W; c++) h[c] = 0
    for (i = 0; i < n; i++) { c = int((x[i] - lo) / bw); if (c >= 0 && c < W) h[c]++ }
    nb = 0; sb = 0                      # flat background from the sidebands
    for (c = 0; c < W; c++) { xc = lo + (c + 0.5) * bw; if ((xc - mu) ^ 2 > 16 * sd * sd) { sb += h[c]; nb++ } }
    bkg = nb ? sb / nb : 0
    for (it = 0; it < 10; it++) {        # background-subtracted moments, 3 sigma
        s0 = 0; s1 = 0; s2 = 0
        for (c = 0; c < W; c++) {
            xc = lo + (c + 0.5) * bw
            if ((xc - mu) ^ 2 < 9 * sd * sd) { w = h[c] - bkg; s0 += w; s1 += w * xc; s2 += w * xc * xc }
        }
        if (s0 <= 0) break
        mu = s1 / s0
        v = s2 / s0 - mu * mu - bw * bw / 12; if (v <= 0) break
        sd = sqrt(v) / 0.986572         # sd of a Gaussian truncated at 3 sigma
    }
    nbkg = bkg * W; nsig = n - nbkg; if (nsig < 0) nsig = 0
    printf "mean=%.4f sigma=%.4f signal=%.0f background=%.0f events=%d\n", mu, sd, nsig, nbkg, n
    top = 0
    for (c = 0; c < W; c++) {
        xc = lo + (c + 0.5) * bw
        f[c] = bkg + (sd > 0 ? nsig * bw / (sd * 2.50662827) * exp(-0.5 * ((xc - mu) / sd) ^ 2) : 0)
        if (h[c] > top) top = h[c]
        if (f[c] > top) top = f[c]
    }
    if (top == 0) top = 1
    for (r = 0; r < H; r++) {
        y = H - 1 - r                   # 0 at the bottom
        line = ""
        for (c = 0; c < W; c++) {
            p = 255                                             # white
            if (y < int(h[c] / top * (H - 2) + 0.5)) p = 170    # grey bar
            if (y == int(f[c] / top * (H - 2) + 0.5)) p = 0     # black curve
            line = line (c ? " " : "") p
        }
        print line
    }
}' "$data")

fit=${result%%$'\n'*}
pixels=${result#*$'\n'}

# --- a minimal PNG encoder: 8-bit greyscale, stored (uncompressed) deflate --
declare -a CRC_TABLE OUT
for ((i = 0; i < 256; i++)); do
    c=$i
    for ((k = 0; k < 8; k++)); do
        if ((c & 1)); then c=$((0xEDB88320 ^ (c >> 1))); else c=$((c >> 1)); fi
    done
    CRC_TABLE[i]=$c
done

be32() { BYTES=($(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255))); }
str_bytes() { BYTES=($(printf '%s' "$1" | od -An -tu1 -v)); }

# chunk TYPE: appends a chunk whose data is in the array DATA to OUT.
chunk() {
    local -a body
    local c=0xFFFFFFFF b
    str_bytes "$1"
    body=("${BYTES[@]}" "${DATA[@]}")
    for b in "${body[@]}"; do c=$((CRC_TABLE[(c ^ b) & 255] ^ (c >> 8))); done
    be32 "${#DATA[@]}"
    OUT+=("${BYTES[@]}" "${body[@]}")
    be32 $((c ^ 0xFFFFFFFF))
    OUT+=("${BYTES[@]}")
}

OUT=(137 80 78 71 13 10 26 10)
be32 "$W"; DATA=("${BYTES[@]}")
be32 "$H"; DATA+=("${BYTES[@]}" 8 0 0 0 0) # depth 8, greyscale, no interlace
chunk IHDR

str_bytes "Comment"; DATA=("${BYTES[@]}" 0)
str_bytes "reana-site root6-fit demo: $fit"; DATA+=("${BYTES[@]}")
chunk tEXt

raw=()
while read -r -a row; do raw+=(0 "${row[@]}"); done <<<"$pixels" # filter type 0 per row
a=1 b=0
for p in "${raw[@]}"; do a=$(((a + p) % 65521)); b=$(((b + a) % 65521)); done
DATA=(120 1) # zlib header
total=${#raw[@]} off=0
while :; do
    len=$((total - off)); ((len > 65535)) && len=65535
    final=0; ((off + len == total)) && final=1
    DATA+=("$final" $((len & 255)) $((len >> 8)) $((~len & 255)) $((~len >> 8 & 255)) "${raw[@]:off:len}")
    off=$((off + len))
    ((final)) && break
done
be32 $((b << 16 | a)); DATA+=("${BYTES[@]}")
chunk IDAT

DATA=()
chunk IEND

mkdir -p -- "$(dirname -- "$plot")"
printf -v escaped '\\%03o' "${OUT[@]}"
printf '%b' "$escaped" >"$plot"

echo "fit result: $fit"
echo "plot written to $plot"
