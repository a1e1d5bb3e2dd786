#!/usr/bin/env bash
# The cross-version test run on another CPython, inside a Debian chroot:
#   scripts/cross-test.sh trixie [PYTEST ARGS...]   -> CPython 3.13
#   scripts/cross-test.sh sid    [PYTEST ARGS...]   -> CPython 3.14
# Builds the chroot (cached, scripts/build-chroot.sh), a venv inside it (cached until
# pyproject.toml or setup.py change; dependencies from PyPI), installs this checkout into it
# (editable: the C accelerator is built for that Python, and its import is checked), then runs
# the tests marked `crossversion` (the list is in tests/conftest.py). The checkout, /proc, /sys
# and /dev are mounted in a private mount namespace: every mount goes away when this script
# ends, however it ends. Any failure is an error (exit status != 0), never a skip.
set -euo pipefail
# One function, called on the last line: bash has read the whole file before it runs any of it
# (a checkout edited during a run cannot change the running script).
main() {
suite=${1:?usage: cross-test.sh trixie|sid [PYTEST ARGS...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
base=${INTROSPECT_CHROOTS:-/var/cache/introspect-chroots}
dir=$base/$suite
venv=/opt/introspect-venv
src=/introspect-src

if [ -z "${INTROSPECT_CROSS_NS:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "error: the $suite run needs root (debootstrap, chroot, mounts): sudo make test-cross" >&2
        exit 1
    fi
    bash "$here/scripts/build-chroot.sh" "$suite"
    # A private mount namespace: the mounts below vanish with this process, even on a crash.
    exec unshare --mount --propagation private \
        env INTROSPECT_CROSS_NS=1 bash "$0" "$suite" "$@"
fi

# One run per chroot at a time: runs share the mount point and the venv.
exec 9>"$base/$suite.lock"
flock 9

cleanup() {
    for m in "$dir$src" "$dir/dev/shm" "$dir/dev/pts" "$dir/dev" "$dir/sys" "$dir/proc"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    return 0
}
trap cleanup EXIT
mkdir -p "$dir$src"
mount -t proc proc "$dir/proc"
mount --bind /sys "$dir/sys"
mount --bind /dev "$dir/dev"
mount --bind /dev/pts "$dir/dev/pts"  # terminals: tmux, pexpect
[ -d /dev/shm ] && mount --bind /dev/shm "$dir/dev/shm"  # multiprocessing's semaphores
mount --bind "$here" "$dir$src"

deps_key=$(cat "$here/pyproject.toml" "$here/setup.py" | sha256sum | cut -c1-16)
# A clean environment: the host's pip settings (local wheel dirs) mean nothing inside.
chroot "$dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=xterm-256color CI="${CI:-}" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    ${HTTP_PROXY:+HTTP_PROXY=$HTTP_PROXY} ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} \
    ${no_proxy:+no_proxy=$no_proxy} ${NO_PROXY:+NO_PROXY=$NO_PROXY} \
    bash -euo pipefail -s "$venv" "$src" "$deps_key" "$@" <<'INSIDE'
venv=$1 src=$2 key=$3
shift 3
py=$venv/bin/python
if [ ! -f "$venv/.deps-$key" ]; then
    echo "creating the venv of $(python3 --version) with the dependencies (once)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$py" -m pip install --quiet --upgrade pip 'setuptools>=77'
    PYTHONWARNINGS=ignore "$py" -m pip install --quiet -e "$src[dev]"
    touch "$venv/.deps-$key"
fi
cd "$src"
# This checkout, editable, without touching the network; the accelerator is built for this
# Python and required (a compiler error fails the install, with the compiler's message).
INTROSPECT_REQUIRE_ACCEL=1 PYTHONWARNINGS=ignore "$py" -m pip install --quiet --no-deps --no-build-isolation -e .
"$py" -c 'import introspect.agent._exact_accel, introspect.agent._tasks_accel, introspect.agent._watchdog_accel, introspect.agent._gc_accel' || {
    echo "error: a C accelerator does not import on $("$py" --version)" >&2; exit 1; }
echo "== $("$py" --version): the crossversion subset" >&2
exec "$py" -m pytest -q -p no:cacheprovider -m crossversion "$@"
INSIDE
}
main "$@"
