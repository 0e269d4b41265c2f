#!/usr/bin/env bash
# Install what the relaygate harness needs, only what is missing.  Idempotent; silent when all is there.
#   bench/setup.sh            nginx-light + libnginx-mod-http-js (fake upstream), wrk, curl, taskset/setsid;
#                             checks the Python venv that runs relaygate AND pyrelay.py
#   bench/setup.sh profile    + py-spy in that venv (for bench/profile.sh)
# System packages come from apt-get (Debian/Ubuntu names): `apt-get update` runs once, and only when
# something is missing; sudo is used when not root.
# The venv: VENV (default: the checkout's .venv if there is one, else $BENCH_HOME/venv/relaygate, made
# here with `pip install -e <checkout>`; see lib.sh).  pyrelay.py runs with the same
# interpreter and the same aiohttp/uvloop/orjson as relaygate, so the floor and the gateway differ
# only in their own code.
# BENCH_HOME defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/relaygate-bench; nothing is written in the repo.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"   # REPO, BENCH_HOME, VENV
want_profile=0
for a in "$@"; do
  case "$a" in
    profile) want_profile=1 ;;
    *) echo "usage: $0 [profile]" >&2; exit 2 ;;
  esac
done
mkdir -p "$BENCH_HOME"
LOG="$BENCH_HOME/setup.log"
say() { echo "setup: $*" >&2; }

# ---- system packages ----
js_module_ok() {  # gen_conf.py knows where to look; a dry run into a scratch dir tells us
  local d rc; d="$(mktemp -d -t bench-setup.XXXXXX)"
  python3 "$HERE/upstream/gen_conf.py" "$d" >/dev/null 2>&1 && rc=0 || rc=1
  rm -rf "$d"; return "$rc"
}
pkgs=()
command -v nginx >/dev/null 2>&1 || pkgs+=(nginx-light)
if ! command -v nginx >/dev/null 2>&1 || ! js_module_ok; then pkgs+=(libnginx-mod-http-js); fi
command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
command -v curl >/dev/null 2>&1 || pkgs+=(curl)
command -v taskset >/dev/null 2>&1 || pkgs+=(util-linux)
command -v setsid >/dev/null 2>&1 || pkgs+=(util-linux)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
if [ ${#pkgs[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || { say "missing ${pkgs[*]} and no apt-get here: install them by hand"; exit 1; }
  SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
  say "installing ${pkgs[*]} (apt-get; log: $LOG)"
  { "${SUDO[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q "${pkgs[@]}"; } >>"$LOG" 2>&1 \
    || { say "apt-get failed; last lines of $LOG:"; tail -15 "$LOG" >&2; exit 1; }
  # the Debian nginx package may start a system nginx on :80; the harness uses its own instances
  js_module_ok || { say "njs module still not found; set NGINX_JS_MODULE=/path/to/ngx_http_js_module.so"; exit 1; }
fi

# ---- the venv that runs relaygate and pyrelay ----
CHECK='import relaygate, aiohttp, uvloop, orjson'
if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; }; then
  if [ -x "$VENV/bin/python" ]; then
    say "$VENV cannot import relaygate/aiohttp/uvloop/orjson; installing the checkout into it (log: $LOG)"
  else
    say "no venv at $VENV; making it with 'pip install -e $REPO' (log: $LOG)"
    python3 -m venv "$VENV" >>"$LOG" 2>&1 || { say "venv creation failed (see $LOG)"; exit 1; }
  fi
  "$VENV/bin/python" -m pip install -q -e "$REPO" >>"$LOG" 2>&1 \
    || { say "pip install failed; last lines of $LOG:"; tail -15 "$LOG" >&2; exit 1; }
  "$VENV/bin/python" -c "$CHECK" || { say "installed, but '$CHECK' still fails in $VENV"; exit 1; }
fi
if [ "$want_profile" = 1 ] && ! [ -x "$VENV/bin/py-spy" ]; then
  say "installing py-spy into $VENV (log: $LOG)"
  "$VENV/bin/python" -m pip install -q py-spy >>"$LOG" 2>&1 || { say "pip install py-spy failed (see $LOG)"; exit 1; }
fi
exit 0
