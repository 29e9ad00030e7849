#!/usr/bin/env bash
# Gives the test image (.cache/images/debian-12-slim, made by build.sh) what
# real images carry and the host does not, so that the tests see whether
# Apptainer (or its stand-in) applies the image's settings:
#   - /.singularity.d/env/90-environment.sh, as `apptainer build` writes for
#     %environment and a pull writes for Docker ENV (images such as ROOT's
#     get PATH and LD_LIBRARY_PATH there): PATH and LD_LIBRARY_PATH get
#     /opt/reana-test, and REANA_TEST_IMAGE_ENV=1;
#   - an /etc/resolv.conf unlike the host's, which Apptainer binds over.
# It is separate from build.sh so that changing it does not rebuild the
# tree (build.sh rebuilds when its own text changes). Idempotent; as root.
# Usage: test/images/image-env.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
TREE=$REPO/.cache/images/debian-12-slim

[ "$(id -u)" -eq 0 ] || { echo "image-env: must run as root" >&2; exit 1; }
[ -x "$TREE/bin/sh" ] || { echo "image-env: $TREE is missing: run test/images/build.sh" >&2; exit 1; }

# put FILE MODE: writes stdin to FILE when it differs.
put() {
    local new; new=$(cat)
    if [ ! -f "$1" ] || [ -L "$1" ] || [ "$(cat "$1")" != "$new" ]; then
        rm -f "$1"
        printf '%s\n' "$new" >"$1"
        echo "image-env: wrote $1"
    fi
    chmod "$2" "$1"
}

install -d -m 0755 "$TREE/.singularity.d" "$TREE/.singularity.d/env" "$TREE/opt/reana-test/bin" "$TREE/opt/reana-test/lib"
# shellcheck disable=SC2016 # evaluated inside the container
put "$TREE/.singularity.d/env/90-environment.sh" 0644 <<'SH'
#!/bin/sh
# reana-site test image: what an image's %environment or Docker ENV sets.
export PATH="/opt/reana-test/bin:$PATH"
export LD_LIBRARY_PATH="/opt/reana-test/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export REANA_TEST_IMAGE_ENV=1
SH
put "$TREE/opt/reana-test/bin/reana-test-tool" 0755 <<'SH'
#!/bin/sh
# reana-site test image: a command found only through the image's PATH.
echo reana-test-tool
SH
put "$TREE/etc/resolv.conf" 0644 <<'CONF'
# reana-site test image: the host's resolv.conf is bound over this one.
nameserver 192.0.2.53
CONF
