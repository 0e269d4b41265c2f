#!/usr/bin/env bash
# One command: relaygate vs direct vs the Python floor (pyrelay.py), same upstream, same sitting.
#   bench/run_relaygate.sh                      # ~6 min with the defaults
#   ROUNDS=1 DURATION=5 WARMUP=2 bench/run_relaygate.sh    # quick look (~2 min)
#
#   wrk (CPU 0) ──► gateway under test (CPU 1, 1 worker) ──► fake upstream nginx :18080 (CPU 0)
#
# Per round, each target gets every scenario once (WARMUP s discarded, then DURATION s measured):
#   direct     wrk straight at the fake upstream (the reference for "added latency")
#   pyrelay-1w pyrelay.py, the Python floor: uvloop + aiohttp server/client, orjson, no auth/metering
#   relaygate-1w  relaygate as in production: auth, routing, price + quota reservation, usage record
#                 group-committed to SQLite before the last byte, access log on
# Rounds alternate the order of pyrelay and relaygate, so drift in background load does not favour
# one of them.  Only one gateway is alive at a time.
#
# Knobs: ROUNDS=2, SCENARIOS="nonstream_c1 nonstream_c64 stream_c1 stream_c64", DURATION=10, WARMUP=3,
#   TARGETS="direct pyrelay relaygate" (add "variant" to also measure relaygate run from VARIANT_SRC,
#   labelled VARIANT_LABEL, default relaygate-variant-1w: e.g. a patched copy of src/),
#   LOADGEN_CPUS=0, GATEWAY_CPUS=1, UPSTREAM_CPUS=0, STAMP (default UTC date-time),
#   OUT=results/raw-$STAMP.jsonl, QUIET_MAX=0.15 / QUIET_WAIT=120 (before each target, wait up to QUIET_WAIT s until other processes
#   use less than QUIET_MAX of a core), RETRY_NOISY=2 / NOISE_MAX=0.10 (run.sh measures a run again,
#   at most RETRY_NOISY times, when others used more than NOISE_MAX of a core meanwhile),
#   KEEP_UPSTREAM=1 (leave the fake upstream running), RELAYGATE_SRC (measure this copy of the package
#   instead of a fresh copy of src/ taken at start).
# Output: results/raw-$STAMP.jsonl (gitignored), results/env-$STAMP.txt (machine, versions, load,
#   metering check), results/report-$STAMP.md (the table + verdict printed at the end; committable).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"; cd "$HERE"
. "$HERE/lib.sh"   # REPO, BENCH_HOME, VENV
ROUNDS="${ROUNDS:-2}"
export SCENARIOS="${SCENARIOS:-nonstream_c1 nonstream_c64 stream_c1 stream_c64}"
export DURATION="${DURATION:-10}" WARMUP="${WARMUP:-3}" REPEAT=1
export LOADGEN_CPUS="${LOADGEN_CPUS-0}" GATEWAY_CPUS="${GATEWAY_CPUS:-1}" UPSTREAM_CPUS="${UPSTREAM_CPUS:-0}"
TARGETS="${TARGETS:-direct pyrelay relaygate}"
STAMP="${STAMP:-$(date -u +%Y-%m-%dT%H%M)}"
export OUT="${OUT:-$HERE/results/raw-$STAMP.jsonl}"
ENVF="$HERE/results/env-$STAMP.txt"; REPORT="$HERE/results/report-$STAMP.md"
export QUIET_MAX="${QUIET_MAX:-0.15}" QUIET_WAIT="${QUIET_WAIT:-120}"
export RETRY_NOISY="${RETRY_NOISY:-2}" NOISE_MAX="${NOISE_MAX:-0.10}"
mkdir -p "$HERE/results"

./setup.sh
cleanup() {
  ./gateways.sh stop relaygate >/dev/null 2>&1 || true
  ./gateways.sh stop pyrelay >/dev/null 2>&1 || true
  [ "${KEEP_UPSTREAM:-0}" = 1 ] || ./upstream/ctl.sh stop upstream >/dev/null 2>&1 || true
}
trap cleanup EXIT

{
  echo "date: $(date -u +%FT%TZ)"; echo "kernel: $(uname -r)"; echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem: $(free -g | awk '/^Mem:/{print $2 " GiB"}')"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "nginx: $(nginx -v 2>&1)"; echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "python: $("$VENV/bin/python" -V)"
  "$VENV/bin/python" -c 'import importlib.metadata as m;print("libs:",*[f"{p} {m.version(p)}" for p in ("relaygate","aiohttp","uvloop","orjson","SQLAlchemy","aiosqlite")])'
  echo "relaygate commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet -- src 2>/dev/null || echo ' + uncommitted changes in src/')"
  echo "pinning: wrk cpus $LOADGEN_CPUS, upstream cpus $UPSTREAM_CPUS, gateway cpus $GATEWAY_CPUS (1 worker)"
  echo "rounds: $ROUNDS, scenarios: $SCENARIOS, warmup ${WARMUP}s, duration ${DURATION}s"
} > "$ENVF"

# Measure one fixed copy of the code: src/ is copied once here and every relaygate start of this run
# imports that copy (RELAYGATE_SRC), so edits made to the checkout meanwhile do not leak into round 2.
if [ -z "${RELAYGATE_SRC:-}" ]; then
  RELAYGATE_SRC="$BENCH_HOME/src-snapshot"; rm -rf "$RELAYGATE_SRC"; mkdir -p "$RELAYGATE_SRC"
  cp -r "$REPO/src/relaygate" "$RELAYGATE_SRC/"; find "$RELAYGATE_SRC" -name __pycache__ -prune -exec rm -rf {} +
  echo "relaygate source: copy of $REPO/src taken at start ($RELAYGATE_SRC)" >> "$ENVF"
else
  echo "relaygate source: $RELAYGATE_SRC (given)" >> "$ENVF"
fi
export RELAYGATE_SRC

./upstream/ctl.sh start upstream

metering_check() {  # usage records committed by relaygate vs access-log lines: proves metering ran
  "$VENV/bin/python" - "$BENCH_HOME/gw/relaygate" <<'PY'
import glob, sqlite3, sys
scratch = sys.argv[1]
db = sqlite3.connect(glob.glob(scratch + "/data/*.db")[0])
rows = db.execute("select end_reason, stream, count(*), sum(cost_nano), sum(input_tokens), sum(output_tokens) "
                  "from usage_records group by 1, 2").fetchall()
used = db.execute("select used_nano from api_keys where name = 'bench'").fetchone()
lines = sum(1 for line in open(scratch + "/relaygate.log", "rb") if line.startswith(b'{"ts_ms"'))
total = sum(r[2] for r in rows)
print(f"relaygate metering: {total} usage records {[(r[0], 'stream' if r[1] else 'json', r[2]) for r in rows]}, "
      f"cost {sum(r[3] or 0 for r in rows)} nano-USD (key used_nano {used[0] if used else '?'}), "
      f"{lines} access-log lines")
PY
}

wait_quiet() {  # before a target: wait (up to QUIET_WAIT s) until other work uses < QUIET_MAX of a core
  local waited=0 busy
  while :; do
    busy="$(awk '/^cpu /{print $2 + $3 + $4}' /proc/stat)"; sleep 2
    busy="$(awk -v b="$busy" -v t="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($2 + $3 + $4 - b) / t}' /proc/stat)"
    awk -v b="$busy" -v m="$QUIET_MAX" 'BEGIN{exit !(b < m)}' && return 0
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      echo "WARNING: still busy (${busy} cores used by others) after ${waited}s; measuring anyway" | tee -a "$ENVF"
      return 0
    fi
    [ "$waited" = 0 ] && echo "waiting for other work to settle (${busy} cores busy)..."
    sleep 3; waited=$((waited + 5))
  done
}

run_target() {  # run_target NAME ROUND
  local t="$1" r="$2"
  wait_quiet
  echo "=== round $r: $t ==="
  case "$t" in
    direct)
      LABEL=direct ROUND_BASE=$((r - 1)) ./run.sh http://127.0.0.1:18080/v1 sk-bench bench-model ;;
    pyrelay)
      ./gateways.sh start pyrelay 1
      GATEWAY_PID="$(cat "$BENCH_HOME/gw/pyrelay.pid")" LABEL=pyrelay-1w ROUND_BASE=$((r - 1)) \
        ./run.sh http://127.0.0.1:18082/v1 sk-bench bench-model
      ./gateways.sh stop pyrelay ;;
    relaygate|variant)
      local label=relaygate-1w src="${RELAYGATE_SRC:-}"
      if [ "$t" = variant ]; then
        label="${VARIANT_LABEL:-relaygate-variant-1w}"; src="${VARIANT_SRC:?variant needs VARIANT_SRC=DIR}"
      fi
      RELAYGATE_SRC="$src" ./gateways.sh start relaygate 1
      GATEWAY_PID="$(cat "$BENCH_HOME/gw/relaygate.pid")" LABEL="$label" ROUND_BASE=$((r - 1)) \
        ./run.sh http://127.0.0.1:18090/v1 sk-bench bench-model
      echo -n "$label: " >> "$ENVF"; metering_check | tee -a "$ENVF"
      ./gateways.sh stop relaygate ;;
    *) echo "unknown target $t"; exit 2 ;;
  esac
}

for r in $(seq "$ROUNDS"); do
  order="$TARGETS"
  if [ $((r % 2)) = 0 ]; then  # even rounds: the gateways in reverse order (direct stays first)
    order="$(echo "$TARGETS" | tr ' ' '\n' | grep -vx direct | tac | tr '\n' ' ')"
    case " $TARGETS " in *" direct "*) order="direct $order" ;; esac
  fi
  for t in $order; do run_target "$t" "$r"; done
done
echo "loadavg at end: $(cat /proc/loadavg)" >> "$ENVF"

echo
python3 report.py "$OUT" | tee "$REPORT"
if [ -n "${VARIANT_SRC:-}" ]; then
  { echo; python3 report.py --gateway "${VARIANT_LABEL:-relaygate-variant-1w}" "$OUT" | sed -n '/^| figure/,$p'; } \
    | tee -a "$REPORT"
fi
echo
echo "raw: $OUT"; echo "env: $ENVF"; echo "report: $REPORT"
