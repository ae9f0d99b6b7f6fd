#!/usr/bin/env bash
# Build and install learn2learn 0.2.0 into the given venv.
#
# Why: its PyPI sdist ships Cython-generated C files that include longintrepr.h, which
# Python 3.11 removed, so `pip install learn2learn` fails. Regenerating the C files with
# Cython < 3 works. The built wheel is cached in .cache/wheels so this runs once per machine.
# Usage: scripts/build_learn2learn.sh VENV_DIR
set -euo pipefail
venv=$(cd "${1:?usage: build_learn2learn.sh VENV_DIR}" && pwd)
py="$venv/bin/python"
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/wheels"
version=0.2.0
mkdir -p "$cache"
wheel=$(ls "$cache"/learn2learn-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$py" -m pip install --quiet "cython<3" wheel setuptools 2>&1 | { grep -v "is ignored: it is neither" || true; }
    "$py" -m pip download --quiet --no-deps --no-binary :all: "learn2learn==$version" -d "$work" 2>&1 \
        | { grep -v "is ignored: it is neither" || true; }
    [ -f "$work/learn2learn-$version.tar.gz" ] || { echo "error: could not download the learn2learn $version sdist" >&2; exit 1; }
    tar -xzf "$work/learn2learn-$version.tar.gz" -C "$work"
    src="$work/learn2learn-$version"
    rm -f "$src"/learn2learn/data/*.c
    (cd "$src" && "$py" setup.py --quiet build_ext bdist_wheel >"$work/build.log" 2>&1) || {
        tail -n 30 "$work/build.log" >&2
        echo "error: building learn2learn $version failed (log above)" >&2
        exit 1
    }
    cp "$src"/dist/learn2learn-"$version"-*.whl "$cache"/
    wheel=$(ls "$cache"/learn2learn-"$version"-*.whl | head -n 1)
fi
"$py" -m pip install --quiet --no-deps "$wheel" 2>&1 | { grep -v "is ignored: it is neither" || true; }
"$py" -c "import learn2learn" 2>/dev/null || { echo "error: learn2learn does not import after install" >&2; exit 1; }
