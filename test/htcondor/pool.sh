#!/usr/bin/env bash
# Runs a real personal HTCondor pool (collector, negotiator, schedd, startd
# on 127.0.0.1) for reana-site's tests. As root, so jobs run as the user who
# submitted them:
#
#   test/htcondor/pool.sh install       unpack HTCondor into .cache and add the
#                                       unprivileged `condor` account; no start
#   test/htcondor/pool.sh start         install, then start the pool and wait for
#                                       a slot and the schedd; does nothing when
#                                       it already runs
#   test/htcondor/pool.sh stop          stop the pool
#   test/htcondor/pool.sh status        one line; exit 0 only when healthy
#   test/htcondor/pool.sh env           BIN=... and CONFIG=... for the harness
#   test/htcondor/pool.sh stop-schedd   condor_off -fast -schedd: the outage the
#                                       tests simulate (jobs' logs stop, the
#                                       collector forgets the schedd)
#   test/htcondor/pool.sh start-schedd  condor_on -schedd, wait until it answers
#
# Where HTCondor comes from: REANA_SITE_HTCONDOR_RELEASE names an installed
# release directory (with bin/ and sbin/); otherwise the tarball of
# ../shared/vendor/htcondor (or REANA_SITE_HTCONDOR_TARBALL) is unpacked into
# .cache/htcondor. Exit status 3 means no HTCondor was found: the tests then
# use the stand-in (test/htcondor/bin).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=$REPO/.cache
VENDOR=$(cd "$REPO/.." && pwd -P)/shared/vendor/htcondor
TARBALL=${REANA_SITE_HTCONDOR_TARBALL:-$(ls "$VENDOR"/htcondor-*.tar.gz 2>/dev/null | head -n1 || true)}
TEMPLATE=${REANA_SITE_HTCONDOR_TEMPLATE:-$VENDOR/condor_config.personal}
# Machine state, like Slurm's /var/spool: one pool per machine.
LOCAL_DIR=${REANA_SITE_HTCONDOR_LOCAL_DIR:-/var/lib/reana-test-htcondor}
CONFIG=$LOCAL_DIR/condor_config
WAIT_SECONDS=${REANA_SITE_HTCONDOR_WAIT:-60}

log() { printf 'htcondor: %s\n' "$*"; }
die() { printf 'htcondor: ERROR: %s\n' "$1" >&2; exit "${2:-1}"; }

# release: the release directory to use, unpacking the tarball if needed.
release() {
    if [ -n "${REANA_SITE_HTCONDOR_RELEASE:-}" ]; then
        [ -x "$REANA_SITE_HTCONDOR_RELEASE/sbin/condor_master" ] ||
            die "REANA_SITE_HTCONDOR_RELEASE=$REANA_SITE_HTCONDOR_RELEASE has no sbin/condor_master" 3
        echo "$REANA_SITE_HTCONDOR_RELEASE"
        return
    fi
    [ -n "$TARBALL" ] && [ -r "$TARBALL" ] || die "no HTCondor tarball ${TARBALL:-in $VENDOR} (REANA_SITE_HTCONDOR_RELEASE unset)" 3
    local name dir
    name=$(basename "$TARBALL" .tar.gz)
    name=${name%-debian12-x86_64}
    dir=$CACHE/htcondor/$name
    if [ ! -x "$dir/sbin/condor_master" ]; then
        log "unpacking $TARBALL into $CACHE/htcondor" >&2
        mkdir -p "$CACHE/htcondor"
        # Unpacked beside and renamed, so a concurrent run never sees half.
        local tmp
        tmp=$(mktemp -d "$CACHE/htcondor/.unpack.XXXXXX")
        tar -xzf "$TARBALL" -C "$tmp" || { rm -rf "$tmp"; die "cannot unpack $TARBALL"; }
        [ -d "$tmp/$name" ] || { rm -rf "$tmp"; die "$TARBALL does not hold $name/"; }
        mv -T "$tmp/$name" "$dir" 2>/dev/null || true
        rm -rf "$tmp"
        chmod -R o+rX "$dir"
    fi
    echo "$dir"
}

ensure_account() {
    getent passwd condor >/dev/null && return 0
    log "adding the unprivileged system account condor"
    useradd --system --no-create-home --shell /usr/sbin/nologin condor
}

# write_config RELEASE: the personal-pool template with our paths.
write_config() {
    local rel=$1 ids new d
    [ -r "$TEMPLATE" ] || die "no configuration template $TEMPLATE" 3
    ids="$(id -u condor).$(id -g condor)"
    install -d -m 0755 "$LOCAL_DIR"
    for d in log spool execute lock; do
        install -d -m 0755 -o condor -g condor "$LOCAL_DIR/$d"
    done
    install -d -m 1777 "$LOCAL_DIR/run"
    new=$(sed -e "s|@RELEASE_DIR@|$rel|g" -e "s|@LOCAL_DIR@|$LOCAL_DIR|g" -e "s|@CONDOR_IDS@|$ids|g" "$TEMPLATE")
    new+=$'\n# test/htcondor/pool.sh: a fixed schedd name, so the outage texts name it\n'
    new+=$'SCHEDD_NAME = reana-test@127.0.0.1\n'
    # Every test command is a job: match each within about a second rather
    # than after the 5 s minimum intervals, and keep claims for the next.
    new+=$'SCHEDD_MIN_INTERVAL = 1\nNEGOTIATOR_MIN_INTERVAL = 1\nNEGOTIATOR_INTERVAL = 1\n'
    new+=$'NEGOTIATOR_CYCLE_DELAY = 1\nCLAIM_WORKLIFE = 3600'
    if [ ! -f "$CONFIG" ] || [ "$(cat "$CONFIG")" != "$new" ]; then
        printf '%s\n' "$new" >"$CONFIG.tmp"
        chmod 0644 "$CONFIG.tmp"
        mv "$CONFIG.tmp" "$CONFIG"
        return 0
    fi
    return 1
}

# Every directory above the release and LOCAL_DIR must be searchable by the
# test users, who run condor_submit and read the configuration.
open_path() {
    local d=$1
    while [ "$d" != / ]; do
        if [ "$(( 0$(stat -c '%a' "$d") & 01 ))" -eq 0 ]; then chmod o+x "$d"; fi
        d=$(dirname "$d")
    done
}

master_pid() {
    local pid p
    pid=$(pgrep -x condor_master -d ' ' 2>/dev/null || true)
    for p in $pid; do
        # Only a master reading our configuration is ours.
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "CONDOR_CONFIG=$CONFIG"; then
            echo "$p"
            return 0
        fi
    done
}

tool() {
    local rel=$1
    shift
    CONDOR_CONFIG=$CONFIG "$rel/bin/$1" "${@:2}"
}

# healthy RELEASE: the schedd answers and a slot is there.
healthy() {
    local rel=$1
    [ -n "$(master_pid)" ] || return 1
    tool "$rel" condor_q -allusers -totals >/dev/null 2>&1 || return 1
    [ -n "$(tool "$rel" condor_status -af Name 2>/dev/null)" ]
}

wait_schedd() {
    local rel=$1 deadline=$((SECONDS + WAIT_SECONDS))
    until healthy "$rel"; do
        [ "$SECONDS" -lt "$deadline" ] || die "the pool is not ready after ${WAIT_SECONDS}s; see $LOCAL_DIR/log"
        sleep 0.5
    done
}

cmd_status() {
    local rel
    rel=$(release)
    if healthy "$rel"; then
        printf 'htcondor: %s pool on 127.0.0.1 (master pid %s, config %s)\n' \
            "$(tool "$rel" condor_version 2>/dev/null | head -n1 | cut -d' ' -f2)" "$(master_pid)" "$CONFIG"
        return 0
    fi
    printf 'htcondor: pool not healthy (master pid %s, config %s)\n' "$(master_pid || true)" "$CONFIG"
    return 1
}

cmd_stop() {
    local rel pid i
    rel=$(release)
    pid=$(master_pid)
    [ -n "$pid" ] || return 0
    log "stopping the pool (master pid $pid)"
    tool "$rel" condor_off -fast -master >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    local rel changed=
    rel=$(release)
    ensure_account
    write_config "$rel" && changed=1
    open_path "$rel"
    open_path "$LOCAL_DIR"
    if [ -z "$changed" ] && healthy "$rel"; then
        cmd_status
        return 0
    fi
    if [ -n "$(master_pid)" ]; then
        # Changed configuration, or a schedd left stopped by a test.
        if [ -z "$changed" ]; then
            tool "$rel" condor_on -schedd >/dev/null 2>&1 || true
            if (wait_schedd "$rel") 2>/dev/null; then cmd_status; return 0; fi
        fi
        cmd_stop
    fi
    log "starting the pool"
    CONDOR_CONFIG=$CONFIG "$rel/sbin/condor_master" || die "condor_master did not start; see $LOCAL_DIR/log"
    wait_schedd "$rel"
    cmd_status
}

case "${1:-}" in
install)
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    rel=$(release)
    ensure_account
    open_path "$rel"
    log "HTCondor in $rel"
    ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env)
    rel=$(release)
    printf 'BIN=%s\nCONFIG=%s\n' "$rel/bin" "$CONFIG"
    ;;
stop-schedd)
    rel=$(release)
    tool "$rel" condor_off -fast -schedd
    ;;
start-schedd)
    rel=$(release)
    tool "$rel" condor_on -schedd
    wait_schedd "$rel"
    ;;
*)
    printf 'usage: %s install|start|stop|status|env|stop-schedd|start-schedd\n' "$0" >&2
    exit 2
    ;;
esac
