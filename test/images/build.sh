#!/usr/bin/env bash
# Builds the container images the tests run steps in, as root, and caches
# them in .cache/images (no container registry is reachable from the test
# machines, so nothing is pulled):
#   - .cache/images/debian-12-slim/: a minimal Debian 12 (bookworm) root
#     filesystem from `debootstrap --variant=minbase`, i.e. an unpacked image
#     directory ("sandbox") that test/apptainer/apptainer can exec in. It has
#     bash, coreutils (od) and mawk (awk): what test/testdata/*/code/*.sh need.
#   - .cache/images/unpacked/registry.hub.docker.com/library/debian:12-slim:
#     a symlink to that tree, in the CVMFS unpacked.cern.ch layout
#     (/cvmfs/unpacked.cern.ch/registry.hub.docker.com/<repo>:<tag>). Tests
#     use .cache/images/unpacked as a stand-in for /cvmfs/unpacked.cern.ch and
#     as REANA_STANDIN_REGISTRY for the stand-in's `pull --sandbox`.
# The tree is rebuilt only when it is missing or this script changed (its
# hash is kept in .cache/images/debian-12-slim.built). Everything is
# readable by other users: the test users run the image.
# Usage: test/images/build.sh [--force]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
IMAGES=$REPO/.cache/images
NAME=debian-12-slim
TREE=$IMAGES/$NAME
MARKER=$IMAGES/$NAME.built
SUITE=bookworm
# The mirror apt uses on this machine (/etc/apt/sources.list.d/debian.sources).
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
UNPACKED=$IMAGES/unpacked/registry.hub.docker.com/library

log() { printf 'images: %s\n' "$*"; }
die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap needs it)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"

mkdir -p "$IMAGES"
chmod 0755 "$IMAGES"
# One build at a time (setup.sh may run concurrently in CI shards).
exec 9>"$IMAGES/.lock"
flock 9

hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
if [ "${1:-}" = --force ] || [ ! -d "$TREE" ] || [ "$(cat "$MARKER" 2>/dev/null)" != "$hash" ] ||
    [ ! -x "$TREE/bin/bash" ]; then
    tmp=$IMAGES/.$NAME.tmp.$$
    rm -rf "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    log "building $TREE with debootstrap --variant=minbase $SUITE $MIRROR (about a minute)"
    start=$(date +%s)
    # The host's own debian-archive-keyring verifies the Release file.
    if ! debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$IMAGES/$NAME.debootstrap.log" 2>&1; then
        tail -n 20 "$IMAGES/$NAME.debootstrap.log" >&2
        die "debootstrap failed (full log: $IMAGES/$NAME.debootstrap.log)"
    fi
    for tool in bash awk od sh; do
        chroot "$tmp" /bin/sh -c "command -v $tool" >/dev/null || die "the image lacks $tool"
    done
    # Downloaded .debs and apt lists are not needed in the image.
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
    # Like an OCI image, /dev is empty: the container runtime provides it (and
    # an unprivileged user cannot copy device nodes when "pulling" the tree).
    rm -rf "${tmp:?}"/dev/*
    # The test users run (read) the tree; keep it otherwise as debootstrap made it.
    chmod -R o+rX "$tmp"
    chmod 0755 "$tmp"
    rm -rf "$TREE"
    mv "$tmp" "$TREE"
    trap - EXIT
    printf '%s\n' "$hash" >"$MARKER"
    log "built $TREE in $(( $(date +%s) - start ))s ($(du -sh "$TREE" | cut -f1))"
fi

# The CVMFS unpacked.cern.ch layout, pointing at the tree.
mkdir -p "$UNPACKED"
chmod 0755 "$IMAGES/unpacked" "$IMAGES/unpacked/registry.hub.docker.com" "$UNPACKED"
link=$UNPACKED/debian:12-slim
target=../../../$NAME
if [ "$(readlink "$link" 2>/dev/null)" != "$target" ]; then
    rm -rf "$link"
    ln -s "$target" "$link"
fi
[ -x "$link/bin/bash" ] || die "$link does not lead to the image"
