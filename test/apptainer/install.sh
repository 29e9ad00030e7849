#!/usr/bin/env bash
# Chooses the Apptainer the container tests run against, as root, and makes
# it ready; test/setup.sh runs it and records the choice in .cache/setup.env
# (APPTAINER_REAL, APPTAINER_SIF, APPTAINER_NOTE). It prints on stdout
#   APPTAINER_REAL=<path of the real apptainer, or empty for the stand-in>
#   APPTAINER_SIF=<a SIF of the test image, or empty>
#   APPTAINER_NOTE=<why the stand-in, or empty>
# and logs on stderr. Which Apptainer:
#   - REANA_SITE_TEST_APPTAINER=/path/to/apptainer: the site's own install;
#   - REANA_SITE_TEST_APPTAINER=standin: the stand-in (test/apptainer/apptainer);
#   - otherwise the real Apptainer 1.4.5 from the kit in
#     ../shared/vendor/apptainer (or REANA_SITE_TEST_APPTAINER_KIT, the
#     tarball), unpacked into its fixed prefix /opt/apptainer-1.4.5 when it
#     is not there yet;
#   - without kit or variable, the stand-in.
# For the real one it installs the Debian packages it needs at run time and
# those of the registry and SIF tests (docker-registry, skopeo, umoci,
# squashfs-tools, uidmap), checks that alice can `apptainer exec` the test
# image, and builds a SIF of it (.cache/images/debian-12-slim.sif, rebuilt
# when the tree changes). Nothing here is fatal: a real Apptainer that does
# not work only warns, and the tests use the stand-in.
# Idempotent; fast when everything is in place.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
IMAGES=$REPO/.cache/images
TREE=$IMAGES/debian-12-slim
PREFIX=/opt/apptainer-1.4.5
KIT=${REANA_SITE_TEST_APPTAINER_KIT:-$(cd "$REPO/.." && pwd -P)/shared/vendor/apptainer/apptainer-1.4.5-debian12-x86_64.tar.gz}

# Run time (the kit's README), then the registry and SIF tests. The FUSE
# drivers only where users can open /dev/fuse: with a /dev/fuse they cannot
# open, Apptainer fails every SIF step instead of unpacking it. With
# squashfuse, fuse2fs and gocryptfs go too, whose absence Apptainer
# reports in an INFO line of every SIF step's log.
PACKAGES=(libseccomp2 libsubid4 libselinux1 libsemanage2 libaudit1 libcap-ng0
    libpam0g libbz2-1.0 libpcre2-8-0 squashfs-tools uidmap
    docker-registry skopeo umoci)

log() { printf 'apptainer: %s\n' "$*" >&2; }
warn() { printf 'apptainer: WARNING: %s\n' "$*" >&2; }

# result REAL SIF NOTE: the lines setup.sh reads.
result() {
    printf 'APPTAINER_REAL=%s\nAPPTAINER_SIF=%s\nAPPTAINER_NOTE=%s\n' "$1" "$2" "${3:-}"
    exit 0
}

standin() {
    log "$1: the container tests use the stand-in (test/apptainer/apptainer)"
    result "" "" "$1"
}

[ "$(id -u)" -eq 0 ] || { warn "must run as root"; standin "not root"; }

fuse_usable() {
    [ -c /dev/fuse ] && [ "$(( 0$(stat -c '%a' /dev/fuse) & 06 ))" -eq 6 ]
}

install_packages() {
    local p missing=()
    local want=("${PACKAGES[@]}")
    if fuse_usable; then
        want+=(squashfuse fuse3 fuse2fs gocryptfs)
    fi
    for p in "${want[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    # docker-registry's postinst would start the machine's registry on
    # :5000; the tests start their own (test/harness/registry.go).
    local policy=/usr/sbin/policy-rc.d own=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# test/apptainer/install.sh: no service starts during apt-get install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own=1
    fi
    local rc=0
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o DPkg::Lock::Timeout=300 "${missing[@]}"
    } >&2 || rc=$?
    [ -n "$own" ] && rm -f "$policy"
    return $rc
}

unpack_kit() {
    log "unpacking $KIT into /opt"
    local tmp
    tmp=$(mktemp -d /opt/.apptainer-unpack.XXXXXX)
    if ! tar -xzf "$KIT" -C "$tmp" || [ ! -x "$tmp/apptainer-1.4.5/bin/apptainer" ]; then
        rm -rf "$tmp"
        warn "cannot unpack $KIT (or it holds no apptainer-1.4.5/bin/apptainer)"
        return 1
    fi
    # Renamed into place, so a concurrent run never sees half of it.
    mv -T "$tmp/apptainer-1.4.5" "$PREFIX" 2>/dev/null || true
    rm -rf "$tmp"
    [ -x "$PREFIX/bin/apptainer" ]
}

# --- which Apptainer -------------------------------------------------------
choice=${REANA_SITE_TEST_APPTAINER:-}
case $choice in
standin) standin "REANA_SITE_TEST_APPTAINER=standin" ;;
"")
    if [ ! -x "$PREFIX/bin/apptainer" ]; then
        [ -r "$KIT" ] || standin "no Apptainer kit ($KIT) and REANA_SITE_TEST_APPTAINER unset"
        unpack_kit || standin "the kit did not unpack"
    fi
    apptainer=$PREFIX/bin/apptainer
    ;;
/*)
    [ -x "$choice" ] || { warn "REANA_SITE_TEST_APPTAINER=$choice is not an executable"; standin "no usable Apptainer"; }
    apptainer=$choice
    ;;
*) warn "REANA_SITE_TEST_APPTAINER must be an absolute path or 'standin', got '$choice'"; standin "no usable Apptainer" ;;
esac

install_packages || warn "installing the packages failed; the tests that need them skip or fail"

version=$("$apptainer" --version 2>&1) || { warn "$apptainer --version: $version"; standin "$apptainer does not run"; }

# --- a test user can run the test image -----------------------------------
[ -x "$TREE/bin/sh" ] || standin "no test image at $TREE (test/images/build.sh)"
if id alice >/dev/null 2>&1; then
    if ! out=$(cd / && setpriv --reuid alice --regid alice --init-groups --reset-env \
        "$apptainer" --nocolor exec --cleanenv --no-home --pwd / "$TREE" id -un 2>&1) || [ "${out##*$'\n'}" != alice ]; then
        warn "alice cannot run $apptainer exec in $TREE: $out"
        standin "$apptainer does not work for the test users"
    fi
fi

# --- a SIF of the test image ------------------------------------------------
# Rebuilt when the tree or its environment script changes (build.sh's
# marker and image-env.sh's output are in the stamp).
sif=$IMAGES/debian-12-slim.sif
stamp=$( { cat "$IMAGES/debian-12-slim.built" 2>/dev/null; cat "$TREE"/.singularity.d/env/*.sh 2>/dev/null; echo "$version"; } | sha256sum | cut -c1-16)
if [ ! -f "$sif" ] || [ "$(cat "$sif.built" 2>/dev/null)" != "$stamp" ]; then
    log "building $sif from $TREE (about 15 s)"
    tmp=$IMAGES/.debian-12-slim.sif.$$
    if out=$("$apptainer" --nocolor build --force "$tmp" "$TREE" 2>&1); then
        chmod 0644 "$tmp"
        mv -f "$tmp" "$sif"
        printf '%s\n' "$stamp" >"$sif.built"
    else
        rm -f "$tmp"
        warn "apptainer build $sif failed (the SIF tests skip): $out"
        sif=
    fi
fi
log "the container tests use $apptainer ($version)"
result "$apptainer" "$sif"
