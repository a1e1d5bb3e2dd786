#!/usr/bin/env bash
# The cross-version test run on a CPython installed on this machine (pyenv), not in a chroot:
#   scripts/pyenv-test.sh 3.12 [PYTEST ARGS...]             -> CPython 3.12, or an error
#   scripts/pyenv-test.sh --if-found 3.12 [PYTEST ARGS...]  -> the same, or one loud line
# The interpreter: INTROSPECT_PY312=/path/to/python3.12 (for 3.12; INTROSPECT_PY313 for 3.13),
# else the newest pyenv install ($PYENV_ROOT, ~/.pyenv, /root/.pyenv: versions/3.12.N).
# Makes a venv beside the chroots (cached until pyproject.toml, setup.py or the interpreter
# change; dependencies as pip is configured here), installs this checkout into it (editable:
# the C accelerators are built for that Python, required, and their import is checked), then
# runs the tests marked `crossversion` (tests/conftest.py). Any failure is an error; a missing
# interpreter is one too, but with --if-found (`make test`), where it is one loud line.
set -euo pipefail
# One function, called on the last line: bash has read the whole file before it runs any of it.
main() {
if_found=0
if [ "${1:-}" = --if-found ]; then
    if_found=1
    shift
fi
version=${1:?usage: pyenv-test.sh [--if-found] 3.12 [PYTEST ARGS...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
override_var=INTROSPECT_PY${version//./}
unset PYTHONPATH PYTHONHOME  # its Python sees its venv and this checkout only

py=${!override_var:-}
if [ -n "$py" ]; then
    # Asked for by name: anything wrong with it is a mistake to fix, never a quiet pass.
    if ! [ -x "$py" ] || [ "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' \
                                 2>/dev/null)" != "$version" ]; then
        echo "error: $override_var=$py is not a CPython $version interpreter" >&2
        exit 1
    fi
else
    py=$(find_pyenv "$version")
    if [ -z "$py" ]; then
        echo "*** CPython $version NOT TESTED: no pyenv $version.N in" \
             "$(pyenv_roots | sed 's|$|/versions|' | paste -sd ' ') and $override_var unset ***" >&2
        [ "$if_found" = 1 ] && exit 0
        exit 1
    fi
fi

base=${INTROSPECT_CHROOTS:-/var/cache/introspect-chroots}
if ! mkdir -p "$base" 2>/dev/null || ! [ -w "$base" ]; then
    base=${XDG_CACHE_HOME:-${HOME:?}/.cache}/introspect  # not root: the user's own cache
    mkdir -p "$base"
fi
venv=$base/venv-$version
# One run per venv at a time: the editable install points it at one checkout for the run.
exec 9>"$venv.lock"
flock 9

key=$( (cat "$here/pyproject.toml" "$here/setup.py"; echo "$py"; "$py" -VV) | sha256sum |
      cut -c1-16)
if [ ! -f "$venv/.deps-$key" ]; then
    echo "creating the venv of $("$py" --version) with the dependencies (once)" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip 'setuptools>=77'
    PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install --quiet -e "$here[dev]"
    touch "$venv/.deps-$key"
fi
cd "$here"
# This checkout, editable, without touching the network; each accelerator is built for this
# Python (its .so beside the source, as the host's) and required: a compiler error fails the
# install, with the compiler's message.
INTROSPECT_REQUIRE_ACCEL=1 PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install --quiet \
    --no-deps --no-build-isolation -e .
"$venv/bin/python" -c 'import introspect.agent._exact_accel, introspect.agent._tasks_accel
import introspect.agent._watchdog_accel, introspect.agent._gc_accel' || {
    echo "error: a C accelerator does not import on $("$venv/bin/python" --version)" >&2; exit 1; }
echo "== $("$venv/bin/python" --version) ($py): the crossversion subset" >&2
"$venv/bin/python" -m pytest -q -p no:cacheprovider -m crossversion "$@"
}

# The newest CPython VERSION.N that pyenv installed (not -dev, not free-threaded "t"), or "".
find_pyenv() {
    local root newest
    for root in $(pyenv_roots); do
        newest=$(ls "$root/versions" 2>/dev/null | grep -E "^${1//./\\.}\.[0-9]+$" |
                 sort -V | tail -n 1) || true
        if [ -n "$newest" ] && [ -x "$root/versions/$newest/bin/python3" ]; then
            echo "$root/versions/$newest/bin/python3"
            return 0
        fi
    done
}

# Where pyenv may be, in order, each once.
pyenv_roots() {
    printf '%s\n' ${PYENV_ROOT:+"$PYENV_ROOT"} "${HOME:-}/.pyenv" /root/.pyenv | awk '!seen[$0]++'
}
main "$@"
