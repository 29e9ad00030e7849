#!/usr/bin/env bash
# Builds .cache/engines-venv, the workflow engines' interpreter the e2e
# tests point REANA_SITE_ENGINE_PYTHON at, from engines/requirements.txt,
# the file a site builds its own from. Called by test/setup.sh; idempotent
# (a marker holds the hash of the interpreter and the requirements) and
# optional: on failure it only warns, and the tests use .cache/venv, whose
# reana-client extras have the same engines.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=$REPO/.cache
VENV=$CACHE/engines-venv
SYS_PYTHON=${SYS_PYTHON:-/usr/bin/python3}
REQ=$REPO/engines/requirements.txt

warn() { printf 'engines: WARNING: %s\n' "$*" >&2; }

hash=$( { "$SYS_PYTHON" -c 'import sys; print(sys.version)'; cat "$REQ"; } | sha256sum | cut -c1-16)
marker=$VENV/.installed-$hash
if [ -e "$marker" ]; then
    exit 0
fi
rm -rf "$VENV"
if ! (umask 022 && "$SYS_PYTHON" -m venv "$VENV" &&
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"); then
    warn "building $VENV failed; the engine tests use $CACHE/venv instead"
    rm -rf "$VENV"
    exit 0
fi
if ! "$VENV/bin/python" -s -c 'import snakemake, cwltool, yadage' >/dev/null 2>&1; then
    warn "$VENV cannot import the engines; the engine tests use $CACHE/venv instead"
    rm -rf "$VENV"
    exit 0
fi
touch "$marker"
echo "engines: $VENV built from $REQ"
