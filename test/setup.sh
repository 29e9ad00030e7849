#!/usr/bin/env bash
# Prepares this machine (Debian 12) for reana-site's tests, as root:
#   - the Debian packages the build and the tests use;
#   - a Python virtualenv with the real reana-client in .cache/venv, usable
#     by unprivileged users;
#   - the POSIX test users alice (4101), bob (4102) and lowuid (900) and
#     their groups;
#   - .cache/setup.env, which the Go tests read;
#   - a real single-node Slurm (Debian's slurmctld, slurmd and munge), started
#     by test/slurm/slurm.sh without systemd; REANA_SITE_SLURM=0 skips
#     starting it. `test/slurm/slurm.sh stop` stops it.
#   - a real MIT Kerberos KDC (test/kdc/kdc.sh) in the throwaway realm
#     REANA-SITE.TEST on 127.0.0.1:18888, files in .cache/kdc; optional:
#     the Kerberos tests skip without it. `test/kdc/kdc.sh stop` stops it.
#   - a real personal HTCondor pool (test/htcondor/pool.sh), from the kit in
#     ../shared/vendor/htcondor unpacked into .cache/htcondor, or from the
#     release named by REANA_SITE_HTCONDOR_RELEASE; without either, or with
#     REANA_SITE_HTCONDOR_POOL=standin, the HTCondor tests use the stand-in.
#   - kube-apiserver and etcd from the kit in ../shared/vendor/kubernetes
#     (or REANA_SITE_KUBE_KIT) unpacked into .cache/kubernetes, for the
#     Kubernetes tests (test/kubereal); without it, or with
#     REANA_SITE_KUBERNETES_API=standin, they use the stand-in.
#   - the real Apptainer (test/apptainer/install.sh), from the kit in
#     ../shared/vendor/apptainer unpacked into /opt/apptainer-1.4.5, or the
#     one named by REANA_SITE_TEST_APPTAINER; without either, or with
#     REANA_SITE_TEST_APPTAINER=standin, the container tests use the stand-in.
#   - the workflow engines' venv in .cache/engines-venv (test/engines/install.sh).
#   - Debian's chromium, for the browser tests (test/browser); without it
#     they skip, except under CI=true, where they fail.
# It is idempotent and does nothing slow when everything is already there.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=$REPO/.cache
VENV=$CACHE/venv
SYS_PYTHON=/usr/bin/python3

# Pinned: reana-client 0.9.6 is the last 0.9 release; reana-commons 0.9.11
# is the one daemon/spec's cross-check was written against. setuptools is
# pinned below 80.9, whose pkg_resources (imported by reana-commons) prints a
# UserWarning on every reana-client command; reana-client wants <81 anyway.
REQUIREMENTS="reana-client==0.9.6 reana-commons==0.9.11 setuptools==80.8.0"
# Optional, for the HTCondor backend's tests; a failure only warns.
OPTIONAL_REQUIREMENTS="htcondor"

# systemd gives the tests systemd-socket-activate, systemd-analyze and
# systemd-tmpfiles; none needs systemd to run as PID 1. rpm (rpmbuild),
# rpmlint and groff-base (for the man page) are for `make rpm` and its test.
# chromium is the headless browser of the web interface's tests
# (test/browser, through chromedp; no chromium-driver needed), and
# fonts-liberation gives its screenshots real text instead of boxes.
PACKAGES=(build-essential gcc make git python3-venv python3-pip util-linux
    procps passwd openssl curl zip unzip sqlite3 ca-certificates systemd
    slurmctld slurmd slurm-client munge rpm rpmlint groff-base
    bubblewrap debootstrap chromium fonts-liberation)

log() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"

# --- Debian packages --------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The postinst scripts of munge, slurmctld and slurmd would start their
    # services; test/slurm/slurm.sh starts them itself, so a policy-rc.d
    # that denies every start is in place while apt-get runs.
    policy=/usr/sbin/policy-rc.d
    own_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# test/setup.sh: no service starts during apt-get install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$own_policy" ]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi
[ -x "$SYS_PYTHON" ] || die "$SYS_PYTHON is missing"

# --- Python virtualenv with reana-client ------------------------------------
mkdir -p "$CACHE"
sys_version=$("$SYS_PYTHON" -c 'import sys; print(sys.version)')
hash=$(printf '%s\n%s\n%s\n' "$sys_version" "$REQUIREMENTS" "$OPTIONAL_REQUIREMENTS" | sha256sum | cut -c1-16)
marker=$VENV/.installed-$hash

# A venv from another interpreter (or a half-made one) is rebuilt.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "removing broken virtualenv $VENV"
    rm -rf "$VENV"
fi
if [ -d "$VENV" ] && [ "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" != "$sys_version" ]; then
    log "removing virtualenv of another Python: $VENV"
    rm -rf "$VENV"
fi
if [ ! -e "$marker" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        "$SYS_PYTHON" -m venv "$VENV"
    fi
    rm -f "$VENV"/.installed-*
    log "installing $REQUIREMENTS (this takes a minute or two the first time)"
    # wheel lets pip build the sdists among the dependencies without the
    # deprecated setup.py-install path.
    (umask 022 && "$VENV/bin/python" -m pip install --disable-pip-version-check -q wheel) ||
        die "pip install wheel failed"
    # shellcheck disable=SC2086 # word splitting of the requirement lists is wanted
    (umask 022 && "$VENV/bin/python" -m pip install --disable-pip-version-check -q $REQUIREMENTS) ||
        die "pip install $REQUIREMENTS failed"
    log "installing $OPTIONAL_REQUIREMENTS (optional)"
    # shellcheck disable=SC2086
    if ! (umask 022 && "$VENV/bin/python" -m pip install --disable-pip-version-check -q $OPTIONAL_REQUIREMENTS); then
        warn "pip install $OPTIONAL_REQUIREMENTS failed; tests that need the htcondor Python bindings will skip"
    fi
    PYTHONWARNINGS=ignore "$VENV/bin/reana-client" --help >/dev/null || die "$VENV/bin/reana-client does not run"
    chmod -R o+rX "$VENV"
    touch "$marker"
fi

REANA_CLIENT=$VENV/bin/reana-client
PYTHON=$VENV/bin/python
REANA_COMMONS_DIR=$(PYTHONWARNINGS=ignore "$PYTHON" -c 'import os, reana_commons; print(os.path.dirname(os.path.abspath(reana_commons.__file__)))' 2>/dev/null | tail -n1)
[ -d "$REANA_COMMONS_DIR" ] || die "cannot find the reana_commons package in $VENV"

# --- make the venv reachable for other users --------------------------------
# Every directory above the venv needs o+x (search) so alice and bob can
# execute .cache/venv/bin/reana-client; nothing else is opened up.
d=$VENV
while :; do
    d=$(dirname "$d")
    if [ "$(( 0$(stat -c '%a' "$d") & 01 ))" -eq 0 ]; then
        log "chmod o+x $d (so test users can reach the virtualenv)"
        chmod o+x "$d"
    fi
    [ "$d" = / ] && break
done
chmod o+rx "$CACHE"
# The test workflows are read by the test users too.
[ -d "$REPO/test/testdata" ] && chmod -R o+rX "$REPO/test/testdata"

# --- test users and groups --------------------------------------------------
ensure_group() {
    getent group "$1" >/dev/null || { log "adding group $1"; groupadd "$1"; }
}

# ensure_user NAME UID GROUPS(comma-separated, may be empty)
ensure_user() {
    local name=$1 uid=$2 groups=$3 home
    if getent passwd "$name" >/dev/null; then
        local have
        have=$(id -u "$name")
        if [ "$have" != "$uid" ]; then
            warn "user $name exists with uid $have, not $uid; leaving it as it is"
        fi
    elif getent passwd "$uid" >/dev/null; then
        warn "uid $uid is taken by $(getent passwd "$uid" | cut -d: -f1); not creating user $name"
        return 0
    else
        log "adding user $name (uid $uid)"
        useradd --create-home --uid "$uid" --shell /bin/bash ${groups:+--groups "$groups"} "$name"
    fi
    if [ -n "$groups" ]; then
        local g
        for g in ${groups//,/ }; do
            if ! id -nG "$name" | tr ' ' '\n' | grep -qx "$g"; then
                log "adding $name to group $g"
                usermod -aG "$g" "$name"
            fi
        done
    fi
    home=$(getent passwd "$name" | cut -d: -f6)
    if [ ! -d "$home" ]; then
        mkdir -p "$home"
        chown "$name:$(id -gn "$name")" "$home"
    fi
    chmod 0700 "$home"
}

ensure_group reana-testers
ensure_group reana-bob-extra
ensure_user alice 4101 reana-testers
ensure_user bob 4102 reana-testers,reana-bob-extra
ensure_user lowuid 900 ""

# --- workflow engines (snakemake, cwltool, yadage) -------------------------
# Optional: .cache/engines-venv from engines/requirements.txt; a failure only
# warns, and the engine tests fall back to .cache/venv.
bash "$REPO/test/engines/install.sh" || warn "installing the workflow engines failed"

# --- container images and the Apptainer stand-in ----------------------------
# Apptainer is not packaged for Debian 12: test/apptainer/apptainer stands in
# for it where the real one (below) is not installed (bwrap in an
# unprivileged user namespace), and test/images/build.sh
# makes the images it runs (a debootstrap tree, cached in .cache/images).
bash "$REPO/test/images/build.sh" || die "building the test images failed"
bash "$REPO/test/images/image-env.sh" || die "adding the image environment to the test image failed"
APPTAINER_STANDIN=$REPO/test/apptainer/apptainer
IMAGES_DIR=$CACHE/images
chmod 0755 "$APPTAINER_STANDIN"

# --- the real Apptainer (optional) ------------------------------------------
# test/apptainer/install.sh unpacks the kit of ../shared/vendor/apptainer
# into /opt/apptainer-1.4.5 (or takes REANA_SITE_TEST_APPTAINER), with its
# run-time packages and those of the registry and SIF tests; without either
# the container tests use the stand-in. It says which on stderr.
apptainer_env=$(bash "$REPO/test/apptainer/install.sh") ||
    { warn "test/apptainer/install.sh failed; the container tests use the stand-in"; apptainer_env=; }
APPTAINER_REAL=$(sed -n 's/^APPTAINER_REAL=//p' <<<"$apptainer_env")
APPTAINER_SIF=$(sed -n 's/^APPTAINER_SIF=//p' <<<"$apptainer_env")
APPTAINER_NOTE=$(sed -n 's/^APPTAINER_NOTE=//p' <<<"$apptainer_env")
[ -n "$apptainer_env" ] || APPTAINER_NOTE="test/apptainer/install.sh failed"

# --- what the Go tests read -------------------------------------------------
env_file=$CACHE/setup.env
new_env=$(cat <<EOF
REANA_CLIENT=$REANA_CLIENT
PYTHON=$PYTHON
REANA_COMMONS_DIR=$REANA_COMMONS_DIR
APPTAINER_STANDIN=$APPTAINER_STANDIN
HTCONDOR_STANDIN=$REPO/test/htcondor/bin
IMAGES_DIR=$IMAGES_DIR
APPTAINER_REAL=$APPTAINER_REAL
APPTAINER_SIF=$APPTAINER_SIF
APPTAINER_NOTE=$APPTAINER_NOTE
EOF
)
if [ ! -f "$env_file" ] || [ "$(cat "$env_file")" != "$new_env" ]; then
    printf '%s\n' "$new_env" >"$env_file.tmp"
    chmod 0644 "$env_file.tmp"
    mv "$env_file.tmp" "$env_file"
    log "wrote $env_file"
fi

# --- check that a test user can run reana-client ----------------------------
if id alice >/dev/null 2>&1; then
    if ! (cd / && setpriv --reuid alice --regid alice --init-groups --reset-env \
        env PYTHONWARNINGS=ignore "$REANA_CLIENT" --help >/dev/null); then
        die "user alice cannot run $REANA_CLIENT"
    fi
fi

# --- check that a test user can run a step in the test image ---------------
if id alice >/dev/null 2>&1; then
    if ! (cd / && setpriv --reuid alice --regid alice --init-groups --reset-env \
        "$APPTAINER_STANDIN" exec --cleanenv --no-home --pwd / "$IMAGES_DIR/debian-12-slim" true); then
        die "user alice cannot run $APPTAINER_STANDIN in $IMAGES_DIR/debian-12-slim (unprivileged user namespaces off?)"
    fi
fi

# --- Slurm ------------------------------------------------------------------
if [ "${REANA_SITE_SLURM:-1}" = 0 ]; then
    log "REANA_SITE_SLURM=0: not starting Slurm (its tests skip)"
else
    bash "$REPO/test/slurm/slurm.sh" start ||
        die "Slurm did not start (logs in /var/log/slurm; REANA_SITE_SLURM=0 skips it)"
    log "Slurm runs until: $REPO/test/slurm/slurm.sh stop"
fi

# --- Kerberos KDC (for the SPNEGO tests) ------------------------------------
# Optional: a failure only warns, and the Kerberos tests skip. The packages
# are installed here rather than in PACKAGES so a failed install does not
# stop the rest of the setup; their postinst starts nothing (no systemd).
KRB5_PACKAGES=(krb5-kdc krb5-admin-server krb5-user faketime)
krb5_missing=()
for p in "${KRB5_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        krb5_missing+=("$p")
    fi
done
if [ ${#krb5_missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${krb5_missing[*]}"
    apt-get update -qq || warn "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${krb5_missing[@]}" ||
        warn "installing ${krb5_missing[*]} failed; the Kerberos tests skip"
fi
if command -v krb5kdc >/dev/null; then
    if bash "$REPO/test/kdc/kdc.sh" start; then
        log "KDC runs until: $REPO/test/kdc/kdc.sh stop"
    else
        warn "the test KDC did not start; the Kerberos tests skip"
    fi
fi

# --- HTCondor (real personal pool) -----------------------------------------
# Optional: the kit may be absent, and a pool that does not start only
# warns; the tests then use the stand-in and say so.
if [ "${REANA_SITE_HTCONDOR_POOL:-}" = standin ]; then
    log "REANA_SITE_HTCONDOR_POOL=standin: HTCondor tests use the stand-in"
else
    rc=0
    bash "$REPO/test/htcondor/pool.sh" start || rc=$?
    case $rc in
    0) log "HTCondor pool runs until: $REPO/test/htcondor/pool.sh stop" ;;
    3) log "no HTCondor kit: HTCondor tests use the stand-in" ;;
    *) warn "the HTCondor pool did not start (exit $rc); HTCondor tests use the stand-in" ;;
    esac
fi
# --- Kubernetes (real API server) ------------------------------------------
# Optional: without the kit the Kubernetes tests use the stand-in and say
# so. The tests unpack it themselves too (test/kubereal); here it is done
# once, and checked to run.
KUBE_KIT=${REANA_SITE_KUBE_KIT:-$(dirname "$REPO")/shared/vendor/kubernetes}
KUBE_TARBALL=$KUBE_KIT/kube-apiserver-1.37.2-etcd-3.7.0-linux-x86_64.tar.gz
KUBE_BIN=$CACHE/kubernetes/kubernetes-1.37.2
if [ "${REANA_SITE_KUBERNETES_API:-}" = standin ]; then
    log "REANA_SITE_KUBERNETES_API=standin: Kubernetes tests use the stand-in"
elif [ -x "$KUBE_BIN/kube-apiserver" ] && [ -x "$KUBE_BIN/etcd" ]; then
    :
elif [ -f "$KUBE_TARBALL" ]; then
    mkdir -p "$CACHE/kubernetes"
    tmp=$(mktemp -d "$CACHE/kubernetes/kubernetes-unpack-XXXXXX")
    if tar -xzf "$KUBE_TARBALL" -C "$tmp" --strip-components=1 &&
        [ -x "$tmp/kube-apiserver" ] && [ -x "$tmp/etcd" ] &&
        mv -T "$tmp" "$KUBE_BIN" 2>/dev/null; then
        log "kube-apiserver and etcd unpacked into $KUBE_BIN"
    else
        rm -rf "$tmp"
        [ -x "$KUBE_BIN/kube-apiserver" ] ||
            warn "could not unpack $KUBE_TARBALL; Kubernetes tests use the stand-in"
    fi
else
    log "no Kubernetes kit ($KUBE_KIT): Kubernetes tests use the stand-in"
fi
if [ -x "$KUBE_BIN/kube-apiserver" ] && ! "$KUBE_BIN/kube-apiserver" --version >/dev/null 2>&1; then
    warn "$KUBE_BIN/kube-apiserver does not run; Kubernetes tests use the stand-in"
fi
log "ready ($REANA_CLIENT)"
