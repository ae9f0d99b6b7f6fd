#!/usr/bin/env bash
# Create the project virtualenv and install everything the code and tests use.
# Usage: scripts/install_deps.sh VENV_DIR
# Idempotent; the Makefile calls it only when requirements.txt, pyproject.toml or this
# script changed (a stamp file keyed on their checksums).
set -euo pipefail
venv=${1:?usage: install_deps.sh VENV_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)
py="$venv/bin/python"

# pip install, quiet, without the machine-specific "Location ... is ignored" noise; on
# failure the whole output is shown.
pip_install() {
    local log
    log=$(mktemp)
    if ! "$py" -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" >&2 || true
        rm -f "$log"
        echo "error: pip install $* failed" >&2
        return 1
    fi
    grep -v "is ignored: it is neither" "$log" || true
    rm -f "$log"
}

pip_install --upgrade pip wheel setuptools
pip_install -r "$root/requirements.txt"
# torchattacks 3.5.1 pins an old requests it never imports: install it without deps.
pip_install --no-deps torchattacks==3.5.1
"$root/scripts/build_learn2learn.sh" "$venv"
pip_install --no-deps -e "$root"

# The embedded data set. Where apt is not available (not root, not Debian) the code falls
# back to torchvision's downloader on first use.
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
            || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) \
            || echo "warning: apt-get could not install dataset-fashion-mnist; Fashion-MNIST will be downloaded on first use" >&2
    else
        echo "note: dataset-fashion-mnist is not installed (needs root + apt); Fashion-MNIST will be downloaded on first use" >&2
    fi
fi
# Chromium for the report's browser test (tests/reports/test_report_browser.py), driven by playwright with
# executable_path=/usr/bin/chromium, so playwright never downloads a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq chromium >/dev/null 2>&1 \
            || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1) \
            || echo "warning: apt-get could not install chromium; the report's browser test will fail" >&2
    else
        echo "note: chromium is not installed (needs root + apt: apt-get install chromium); the report's browser test needs it" >&2
    fi
fi
# BGN's native CPU kernel: compile it now (about 10-30 s, cached per source, torch and CPU) rather than in the
# first run. Without a C++ compiler BGN uses its eager paths, with one warning.
"$py" -c "import sys; from normlayers.native import main; sys.exit(main(['build']))" \
    || echo "note: BGN's native kernel did not build; BGN will use its eager paths" >&2
"$py" - <<'PY'
import importlib
for name in ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse", "wandb", "submitit",
             "learn2learn", "torchattacks", "sklearn", "scipy", "matplotlib", "playwright", "normlayers", "tasks",
             "reports"):
    importlib.import_module(name)
PY
echo "environment ready: $venv"
