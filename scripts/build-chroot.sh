#!/usr/bin/env bash
# Builds (once) a Debian chroot with another CPython for the cross-version test runs:
#   scripts/build-chroot.sh trixie   -> CPython 3.13
#   scripts/build-chroot.sh sid      -> CPython 3.14
# The chroot lives in $INTROSPECT_CHROOTS (default /var/cache/introspect-chroots), outside the
# checkout, and is reused by later runs (a stamp file marks a finished build). Needs root and
# Debian's debootstrap (installed with apt-get when missing). Any failure is an error.
set -euo pipefail
suite=${1:?usage: build-chroot.sh trixie|sid}
base=${INTROSPECT_CHROOTS:-/var/cache/introspect-chroots}
dir=$base/$suite
stamp=$dir/.introspect-ready
[ -f "$stamp" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "error: building the $suite chroot needs root (debootstrap, mounts)" >&2; exit 1
fi
mkdir -p "$base"
# One build per suite at a time (two `make test` at once, or a build already under way).
exec 8>"$base/$suite.build.lock"
flock 8
[ -f "$stamp" ] && exit 0
command -v debootstrap >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null; }
# The same Debian archive apt uses on this machine.
mirror=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } \
          | grep -v security | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
# A build killed half-way may have left debootstrap's mounts (proc, sys) inside: never delete
# through them into the host's.
if [ -d "$dir" ]; then
    { grep -o " $dir/[^ ]*" /proc/mounts || true; } | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$dir"
fi
echo "building the $suite chroot in $dir from $mirror (about 10 minutes, once)" >&2
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-dev,gcc,make,git,tmux,ca-certificates,procps \
    "$suite" "$dir" "$mirror" >"$base/$suite.log" 2>&1 || {
    echo "error: debootstrap $suite failed; see $base/$suite.log" >&2; tail -20 "$base/$suite.log" >&2; exit 1; }
# The host's extra CA certificates (a TLS-intercepting proxy's) so pip works inside.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$dir/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    chroot "$dir" update-ca-certificates >/dev/null 2>&1 || {
        echo "error: update-ca-certificates failed in the $suite chroot (pip would fail TLS)" >&2
        exit 1; }
fi
echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99introspect"
touch "$stamp"
