#!/usr/bin/env bash
# Builds the reana-site RPM from a binary that is already built (`make rpm`
# runs `make build` first, then this script).
#
#   packaging/build-rpm.sh BINARY VERSION OUTDIR
#
# BINARY   the reana-site binary to package (bin/reana-site)
# VERSION  the version that the binary was built with, from `git describe`
#          (v1.2.3, v1.2.3-4-gabc1234, abc1234-dirty, 0.0.0-dev, ...)
# OUTDIR   where the .rpm goes; the last line of output is its path
#
# RPM_GLIBC_MAX (default 2.34, EL9's glibc): fail if the binary needs a
# glibc symbol version newer than this one. See packaging/reana-site.spec
# for why the binary is dynamically linked.
set -euo pipefail

die() { printf 'build-rpm: %s\n' "$*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 BINARY VERSION OUTDIR"
binary=$1 version=$2 outdir=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$here")
glibc_max=${RPM_GLIBC_MAX:-2.34}

command -v rpmbuild >/dev/null ||
    die "rpmbuild is missing: apt-get install rpm (Debian) or dnf install rpm-build systemd-rpm-macros (EL9)"
[ -x "$binary" ] || die "$binary is not an executable (run make build)"

# --- the binary must run on the target's glibc ---------------------------------
# rpm's own dependency generator lists what the package will require, among
# them libc.so.6(GLIBC_x.y)(64bit) for each glibc symbol version used.
elfdeps=$(rpm --eval '%{_rpmconfigdir}')/elfdeps
if [ -x "$elfdeps" ]; then
    newest=$("$elfdeps" --requires "$binary" |
        sed -n 's/^libc\.so\.6(GLIBC_\([0-9.]*\)).*/\1/p' | sort -V | tail -n1)
    if [ -n "$newest" ] &&
        [ "$(printf '%s\n%s\n' "$newest" "$glibc_max" | sort -V | tail -n1)" != "$glibc_max" ]; then
        die "$binary needs glibc $newest, newer than RPM_GLIBC_MAX=$glibc_max (EL9 has 2.34): build on the target distribution (see packaging/reana-site.spec)"
    fi
else
    printf 'build-rpm: warning: %s is missing; not checking the binary'"'"'s glibc symbol versions\n' "$elfdeps" >&2
fi

# --- Version and Release ---------------------------------------------------------
# RPM allows no '-' in Version or Release. A tagged build vX.Y.Z becomes
# X.Y.Z-1. N commits after the tag, it becomes X.Y.Z-1.N.git<hash>, which
# sorts after X.Y.Z-1. A checkout without tags becomes 0.0.0-0.git<hash>.
# Uncommitted changes add .dirty.
v=$version
dirty=
if [[ $v == *-dirty ]]; then
    dirty=.dirty
    v=${v%-dirty}
fi
# An abbreviated commit hash first: one may consist of digits only.
if [[ $v =~ ^[0-9a-f]{7,40}$ ]]; then
    v=git$v
fi
v=${v#v}
if [[ $v =~ ^git([0-9a-f]+)$ ]]; then
    rpm_version=0.0.0 rpm_release=0.$v
elif [[ $v =~ ^([0-9]+(\.[0-9]+)*)$ ]]; then
    rpm_version=$v rpm_release=1
elif [[ $v =~ ^([0-9]+(\.[0-9]+)*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
    rpm_version=${BASH_REMATCH[1]} rpm_release=1.${BASH_REMATCH[3]}.git${BASH_REMATCH[4]}
elif [[ $v =~ ^([0-9]+(\.[0-9]+)*)-(.+)$ ]]; then
    # A pre-release such as 1.2.0-rc1 sorts before 1.2.0-1.
    rpm_version=${BASH_REMATCH[1]} rpm_release=0.${BASH_REMATCH[3]//[^A-Za-z0-9.]/.}
else
    rpm_version=0.0.0 rpm_release=0.${v//[^A-Za-z0-9.]/.}
fi
rpm_release=$rpm_release$dirty

# --- Packager and the %changelog entry -------------------------------------------
# The packager is RPM_PACKAGER, else rpm's own %packager (~/.rpmmacros),
# else the author of the commit that is packaged, else this user. The
# entry's date is that commit's (today without git).
packager=${RPM_PACKAGER:-$(rpm --eval '%{?packager}')}
if [ -z "$packager" ]; then
    packager=$(git -C "$repo" log -1 --format='%an <%ae>' 2>/dev/null || true)
fi
if [ -z "$packager" ]; then
    packager="$(id -un) <$(id -un)@$(hostname -f 2>/dev/null || hostname)>"
fi
changelog_date=$(TZ=UTC0 git -C "$repo" log -1 --date=format-local:'%a %b %d %Y' --format=%cd 2>/dev/null || true)
if [ -z "$changelog_date" ]; then
    changelog_date=$(LC_ALL=C TZ=UTC0 date +'%a %b %d %Y')
fi

# --- stage the sources and build ------------------------------------------------
top=$(mktemp -d "${TMPDIR:-/tmp}/reana-site-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
src=$top/SOURCES
mkdir -p "$src"
install -m 0755 "$binary" "$src/reana-site"
for f in reana-site.service reana-site.socket reana-site-token.socket reana-site.tmpfiles; do
    install -m 0644 "$repo/systemd/$f" "$src/$f"
done
install -m 0644 "$here/reana-site.sysconfig" "$src/reana-site.sysconfig"
install -m 0644 "$here/reana-site.8" "$src/reana-site.8"
for f in serviceaccount.yaml role.yaml rolebinding.yaml README.md; do
    install -m 0644 "$repo/deploy/kubernetes/$f" "$src/kubernetes-$f"
done
# The engines' adapters: sources only, owned by root, whatever the tree has.
tar -C "$repo/engines" --owner=0 --group=0 --mode=u=rwX,go=rX --exclude=__pycache__ \
    -cf "$src/engines.tar" requirements.txt reana_site_engines

args=(
    --define "_topdir $top"
    --define "_sourcedir $src"
    --define "_rpmdir $top/RPMS"
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"
    --define "rs_version $rpm_version"
    --define "rs_release $rpm_release"
    --define "rs_source $version"
    --define "rs_changelog_date $changelog_date"
    --define "packager $packager"
)
if [ -z "$(rpm --eval '%{?systemd_post:defined}')" ]; then
    # No systemd-rpm-macros here (Debian): use the fallback definitions, and
    # do not check BuildRequires against this host's empty rpm database.
    args+=(--load "$here/macros.systemd-fallback" --nodeps)
fi
# rpm's brp-compress (which gzips the man page) is a bash script that
# starts with #!/bin/sh. Where /bin/sh is not bash (Debian's dash), run it
# with bash.
case $(readlink -f /bin/sh) in
*/bash) ;;
*) args+=(--define "__brp_compress bash %{_rpmconfigdir}/brp-compress %{?_prefix}") ;;
esac
mkdir -p "$outdir"
rpmbuild --quiet "${args[@]}" -bb "$here/reana-site.spec" >&2
shopt -s nullglob
built=("$top"/RPMS/*.rpm)
[ ${#built[@]} -eq 1 ] || die "expected one package from rpmbuild, got ${#built[@]}"
out=$outdir/$(basename "${built[0]}")
mv -f "${built[0]}" "$out"
echo "$out"
