# Sourced by the bench scripts: common locations.  Not executable on its own.
#   BENCH_HOME  scratch/state root (default ${XDG_CACHE_HOME:-$HOME/.cache}/relaygate-bench), never the repo
#   VENV        Python venv with relaygate installed (default: the checkout's .venv, else
#               $BENCH_HOME/venv/relaygate made by setup.sh); pyrelay.py runs with it too
# shellcheck shell=bash
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_HOME="${BENCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/relaygate-bench}"
if [ -z "${VENV:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then VENV="$REPO/.venv"; else VENV="$BENCH_HOME/venv/relaygate"; fi
fi
export BENCH_HOME VENV
