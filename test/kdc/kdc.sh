#!/usr/bin/env bash
# Runs a real MIT Kerberos KDC (Debian's krb5-kdc) for reana-site's tests,
# in a throwaway realm on loopback, without systemd and without touching
# /etc: every file is under $REANA_SITE_KDC_DIR (default .cache/kdc) and
# the tools find them through KRB5_CONFIG and KRB5_KDC_PROFILE. As root:
#
#   test/kdc/kdc.sh start   creates the realm (once) and starts krb5kdc;
#                           does nothing when it already runs
#   test/kdc/kdc.sh stop    stops krb5kdc (the realm stays for next time)
#   test/kdc/kdc.sh status  one line; exit 0 only when it answers
#   test/kdc/kdc.sh env     the variables the tests read, NAME=value lines
#
# Principals (realm REANA-SITE.TEST unless REANA_SITE_KDC_REALM says
# otherwise), each user's password is <name>pw and also in a keytab:
#   alice, bob           the POSIX test users (keytabs alice.keytab, bob.keytab)
#   alice/admin          a two-component principal, which the daemon refuses
#                        (keytab alice_admin.keytab)
#   HTTP/localhost       the daemon's service principal (http.keytab)
#   HTTP/other.test      another service, for "a ticket for another service"
#                        (other.keytab)
# Every keytab is mode 0600, owned by root, like a site's service keytab.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
DIR=${REANA_SITE_KDC_DIR:-$REPO/.cache/kdc}
# One realm per directory: worktrees that share .cache through a symlink
# name the same directory and so the same KDC.
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
REALM=${REANA_SITE_KDC_REALM:-REANA-SITE.TEST}
PORT=${REANA_SITE_KDC_PORT:-18888}
USERS=(alice bob alice/admin)
SERVICES=(HTTP/localhost HTTP/other.test)

log() { printf 'kdc: %s\n' "$*"; }
die() { printf 'kdc: ERROR: %s\n' "$*" >&2; exit 1; }

export KRB5_CONFIG=$DIR/krb5.conf
export KRB5_KDC_PROFILE=$DIR/kdc.conf
PIDFILE=$DIR/kdc.pid

# keytab_of PRINCIPAL: the keytab file a principal's keys are exported to.
keytab_of() {
    case $1 in
    HTTP/localhost) echo "$DIR/http.keytab" ;;
    HTTP/other.test) echo "$DIR/other.keytab" ;;
    *) echo "$DIR/${1//\//_}.keytab" ;;
    esac
}

running_pid() {
    local pid
    [ -r "$PIDFILE" ] || return 1
    pid=$(tr -dc '0-9' <"$PIDFILE")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = krb5kdc ] || return 1
    echo "$pid"
}

# answers: the KDC hands out a ticket (kinit from a keytab into a
# throwaway cache), not merely a live process.
answers() {
    local cc
    cc=$(mktemp "$DIR/probe.XXXXXX")
    if kinit -k -t "$(keytab_of alice)" -c "FILE:$cc" "alice@$REALM" >/dev/null 2>&1; then
        rm -f "$cc"
        return 0
    fi
    rm -f "$cc"
    return 1
}

write_config() {
    # dns_canonicalize_hostname and rdns off: the SPN is HTTP/<host as
    # typed>, as browsers and curl ask for it, and no DNS is consulted.
    cat >"$DIR/krb5.conf.tmp" <<EOF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    default_ccache_name = FILE:$DIR/ccache_%{uid}

[realms]
    $REALM = {
        kdc = 127.0.0.1:$PORT
    }

[domain_realm]
    localhost = $REALM
    .test = $REALM
EOF
    mv "$DIR/krb5.conf.tmp" "$DIR/krb5.conf"
    cat >"$DIR/kdc.conf.tmp" <<EOF
[kdcdefaults]
    kdc_ports = $PORT
    kdc_tcp_ports = $PORT

[realms]
    $REALM = {
        database_name = $DIR/principal
        key_stash_file = $DIR/stash
        acl_file = $DIR/kadm5.acl
        max_life = 10h
        max_renewable_life = 7d
    }

[logging]
    kdc = FILE:$DIR/kdc.log
EOF
    mv "$DIR/kdc.conf.tmp" "$DIR/kdc.conf"
    : >"$DIR/kadm5.acl"
}

# kadm QUERY: kadmin.local, quiet (it reports "no policy specified" and
# the like on every principal); create_realm checks the keytabs instead.
kadm() { kadmin.local -r "$REALM" -q "$1" >/dev/null 2>&1; }

create_realm() {
    local p kt
    rm -rf "$DIR/principal"* "$DIR/stash" "$DIR"/*.keytab
    kdb5_util create -s -r "$REALM" -P "kdc-master-$RANDOM$RANDOM" >/dev/null
    for p in "${USERS[@]}"; do
        kadm "addprinc -pw ${p%%/*}pw $p"
        # -norandkey keeps the password working beside the keytab.
        kadm "ktadd -norandkey -k $(keytab_of "$p") $p"
    done
    for p in "${SERVICES[@]}"; do
        kadm "addprinc -randkey $p"
        kadm "ktadd -k $(keytab_of "$p") $p"
    done
    for p in "${USERS[@]}" "${SERVICES[@]}"; do
        kt=$(keytab_of "$p")
        klist -k "$kt" 2>/dev/null | grep -q "$p@$REALM" || die "no key for $p in $kt"
        chown root:root "$kt"
        chmod 0600 "$kt"
    done
    printf '%s %s\n' "$REALM" "$PORT" >"$DIR/.created"
}

start() {
    command -v krb5kdc >/dev/null || die "krb5kdc is not installed (apt-get install krb5-kdc krb5-admin-server krb5-user)"
    chmod 0755 "$DIR"
    exec 9>"$DIR/.lock"
    flock 9
    if running_pid >/dev/null && answers; then
        log "running (pid $(running_pid), realm $REALM on 127.0.0.1:$PORT)"
        return 0
    fi
    if pid=$(running_pid); then
        kill "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    write_config
    if [ "$(cat "$DIR/.created" 2>/dev/null)" != "$REALM $PORT" ]; then
        log "creating realm $REALM in $DIR"
        create_realm
    fi
    # krb5kdc forks into the background: it must not keep the lock (fd 9)
    # or the caller's stdout, or the next start and the caller would wait.
    krb5kdc -r "$REALM" -P "$PIDFILE" 9>&- </dev/null >>"$DIR/kdc.log" 2>&1
    for _ in $(seq 1 50); do
        if answers; then
            log "started (pid $(running_pid), realm $REALM on 127.0.0.1:$PORT)"
            return 0
        fi
        sleep 0.1
    done
    die "krb5kdc does not answer on 127.0.0.1:$PORT (log: $DIR/kdc.log)"
}

stop() {
    local pid
    if pid=$(running_pid); then
        kill "$pid"
        for _ in $(seq 1 50); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        log "stopped"
    fi
    rm -f "$PIDFILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status)
    if running_pid >/dev/null && answers; then
        echo "kdc: running (realm $REALM on 127.0.0.1:$PORT)"
    else
        echo "kdc: not running"
        exit 1
    fi
    ;;
env)
    cat <<EOF
KDC_DIR=$DIR
KDC_REALM=$REALM
KDC_ADDR=127.0.0.1:$PORT
KRB5_CONFIG=$KRB5_CONFIG
KRB5_KDC_PROFILE=$KRB5_KDC_PROFILE
KDC_SERVICE_PRINCIPAL=HTTP/localhost
KDC_SERVICE_KEYTAB=$(keytab_of HTTP/localhost)
KDC_OTHER_PRINCIPAL=HTTP/other.test
KDC_OTHER_KEYTAB=$(keytab_of HTTP/other.test)
EOF
    ;;
*)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
