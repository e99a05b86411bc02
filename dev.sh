#!/usr/bin/env bash
# Set up the project's virtual environment (once) and run the example model or the test suite.
#   bash dev.sh example   compile examples/mlp.ir for the host CPU (LLVM), run it, check it
#   bash dev.sh test      the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

setup() {
    local stamp="$VENV/.installed" want
    want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
    if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    # torch first, pinned: the CPU wheel; anything that depends on torch then finds it installed
    "$PY" -m pip install -q torch==2.13.0
    "$PY" -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
}

case "${1:-}" in
    example)
        setup
        "$PY" -m compiler run examples/mlp.ir --dim batch=4 --target llvm --check
        ;;
    test)
        setup
        shift
        # pytest exits 5 when it collects nothing: that fails here like any other non-zero status
        "$PY" -m pytest -q -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: bash dev.sh example | test [pytest args]" >&2
        exit 2
        ;;
esac
