#!/usr/bin/env bash
# Gateway overhead harness (wrk, closed loop, loopback only).  Kept in step with the shared
# gateway-overhead harness; additions: the "load1", "gw_cpu_s" and "other_cpu_s" fields of each JSON line.
#   bench/run.sh TARGET_BASE_URL [KEY] [MODEL]
#   e.g. bench/run.sh http://127.0.0.1:18080/v1            # direct to the fake upstream
#        bench/run.sh http://127.0.0.1:4000/v1 sk-master my-model
# Sends POST {TARGET_BASE_URL}/chat/completions.  Scenarios (each: WARMUP s discarded, then DURATION s):
#   nonstream_c1   non-stream, 1 connection  (latency)
#   nonstream_c64  non-stream, 64 connections (throughput)
#   stream_c64     "stream": true, 64 connections (wrk latency = time to the end of the stream)
# Env knobs: LABEL (default: host:port), DURATION=10, WARMUP=3, REPEAT=2, SCENARIOS="nonstream_c1
#   nonstream_c64 stream_c64", LOADGEN_CPUS=0 (taskset for wrk; empty = no pinning), WRK_THREADS=1,
#   TIMEOUT=10s, OUT=results/raw.jsonl next to this script (JSON lines appended), CHAT_PATH=/chat/completions,
#   ALLOW_NONLOCAL=0 (refuses any host that is not loopback unless set to 1), BENCH_BODY_FILE (custom body),
#   RETRY_NOISY=0 / NOISE_MAX=0.10 / QUIET_MAX=0.15 / QUIET_WAIT=120 (re-measure runs disturbed by other work).
# Every JSON line also carries "load1" (1-min load average after the run; the harness itself accounts
# for ~2 of it when it saturates both cores), "other_cpu_s" (CPU seconds used during the measured run by
# processes outside the harness: other work sharing the cores, i.e. noise; processes that started and
# ended within the run are missed) and, when GATEWAY_PID is set, "gw_cpu_s" (CPU seconds that process
# used, all threads).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BASE="${1:?usage: run.sh TARGET_BASE_URL [KEY] [MODEL]}"; BASE="${BASE%/}"
KEY="${2:-sk-bench}"; MODEL="${3:-gpt-4o-mini}"
DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-3}"; REPEAT="${REPEAT:-2}"
SCENARIOS="${SCENARIOS:-nonstream_c1 nonstream_c64 stream_c64}"
LOADGEN_CPUS="${LOADGEN_CPUS-0}"; WRK_THREADS="${WRK_THREADS:-1}"; TIMEOUT="${TIMEOUT:-10s}"
CHAT_PATH="${CHAT_PATH:-/chat/completions}"
ROUND_BASE="${ROUND_BASE:-0}"   # added to the "round" field (run_relaygate.sh numbers its interleaved rounds)
OUT="${OUT:-$HERE/results/raw.jsonl}"; mkdir -p "$(dirname "$OUT")"
URL="$BASE$CHAT_PATH"
hostport="$(echo "$URL" | sed -E 's#^[a-z]+://([^/]+).*#\1#')"; host="${hostport%:*}"
LABEL="${LABEL:-$hostport}"
case "$host" in 127.0.0.1|localhost|"[::1]") ;; *)
  [ "${ALLOW_NONLOCAL:-0}" = 1 ] || { echo "refusing non-loopback target $host (set ALLOW_NONLOCAL=1)"; exit 2; } ;;
esac
PIN=(); [ -n "$LOADGEN_CPUS" ] && PIN=(taskset -c "$LOADGEN_CPUS")
tmp="$(mktemp -d -t bench-run.XXXXXX)"; trap 'rm -rf "$tmp"' EXIT

# ---- functional pre-check with curl (status + body shape), so broken targets are obvious ----
check() {
  local stream="$1" body code snippet
  if [ "$stream" = 1 ]; then
    body='{"model":"'"$MODEL"'","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}'
  else
    body='{"model":"'"$MODEL"'","messages":[{"role":"user","content":"hi"}]}'
  fi
  code="$(curl -s -o "$tmp/check" -w '%{http_code}' --max-time 20 -X POST "$URL" \
          -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$body" || true)"
  snippet="$(head -c 160 "$tmp/check" 2>/dev/null | tr -d '\n"\\' || true)"
  if [ "$stream" = 1 ]; then
    if [ "$code" = 200 ] && grep -q '^data: \[DONE\]' "$tmp/check" && grep -q '"usage"' "$tmp/check"; then
      echo "ok(200 sse $(grep -c '^data:' "$tmp/check") data lines, usage, DONE)"
    else echo "FAIL(http $code: $snippet)"; fi
  else
    if [ "$code" = 200 ] && grep -q '"choices"' "$tmp/check" && grep -q '"usage"' "$tmp/check"; then
      echo "ok(200 json, usage)"
    else echo "FAIL(http $code: $snippet)"; fi
  fi
}
CHECK_JSON="$(check 0)"; CHECK_SSE="$(check 1)"
echo "# target=$URL label=$LABEL model=$MODEL  check: json=$CHECK_JSON sse=$CHECK_SSE"
echo "# wrk pinned to cpus '${LOADGEN_CPUS:-none}', threads=$WRK_THREADS, warmup=${WARMUP}s, duration=${DURATION}s, repeat=$REPEAT"

proc_cpu() {  # utime+stime ticks of GATEWAY_PID (all its threads), empty when unset/gone
  [ -n "${GATEWAY_PID:-}" ] && [ -r "/proc/$GATEWAY_PID/stat" ] || return 0
  sed -E 's/^.*\) //' "/proc/$GATEWAY_PID/stat" | awk '{print $12 + $13}'
}
BENCH_HOME="${BENCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/relaygate-bench}"
OUR_SID="$(ps -o sid= -p $$ | tr -d ' ')"
others_ticks() {  # "pid ticks" of every process outside this harness: not in our session (run.sh, wrk),
  # not the gateway's session (GATEWAY_PID), not the fake upstream's nginx
  local master; master="$(cat "$BENCH_HOME/nginx-upstream/logs/nginx.pid" 2>/dev/null || echo -1)"
  awk -v s1="$OUR_SID" -v s2="${GATEWAY_PID:--1}" -v m="$master" '{
      i = match($0, /\)[^)]*$/); split(substr($0, i + 2), a, " ")
      pid = $1 + 0; if (a[4] == s1 || a[4] == s2 || pid == m || a[2] == m) next
      print pid, a[12] + a[13] }' /proc/[0-9]*/stat 2>/dev/null
}
other_cpu_s() {  # CPU seconds used by others between two others_ticks snapshots (exited processes are missed)
  awk -v t="$(getconf CLK_TCK)" 'NR == FNR { a[$1] = $2; next } { d += $2 - (($1 in a) ? a[$1] : 0) }
      END { printf "%.2f", d / t }' "$1" "$2"
}

# RETRY_NOISY=N: a run during which other processes used more than NOISE_MAX of a core is discarded and
# measured again (after waiting up to QUIET_WAIT s for a quiet box), at most N times; the last is kept.
RETRY_NOISY="${RETRY_NOISY:-0}"; NOISE_MAX="${NOISE_MAX:-0.10}"; QUIET_MAX="${QUIET_MAX:-0.15}"; QUIET_WAIT="${QUIET_WAIT:-120}"
wait_quiet() {  # wait (up to QUIET_WAIT s) until other work uses < QUIET_MAX of a core (2 s samples)
  local waited=0 busy
  while [ "$waited" -lt "$QUIET_WAIT" ]; do
    busy="$(awk '/^cpu /{print $2 + $3 + $4}' /proc/stat)"; sleep 2
    busy="$(awk -v b="$busy" -v t="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($2 + $3 + $4 - b) / t}' /proc/stat)"
    awk -v b="$busy" -v m="$QUIET_MAX" 'BEGIN{exit !(b < m)}' && return 0
    sleep 3; waited=$((waited + 5))
  done
}

results=()
for round in $(seq "$REPEAT"); do
  for sc in $SCENARIOS; do
    case "$sc" in
      nonstream_c1)  stream=0; conns=1 ;;
      nonstream_c64) stream=0; conns=64 ;;
      stream_c64)    stream=1; conns=64 ;;
      stream_c1)     stream=1; conns=1 ;;
      nonstream_c*)  stream=0; conns="${sc#nonstream_c}" ;;
      stream_c*)     stream=1; conns="${sc#stream_c}" ;;
      *) echo "unknown scenario $sc"; exit 2 ;;
    esac
    thr="$WRK_THREADS"; [ "$conns" -lt "$thr" ] && thr="$conns"
    export BENCH_KEY="$KEY" BENCH_MODEL="$MODEL" BENCH_STREAM="$stream" BENCH_LABEL="$LABEL" \
           BENCH_SCENARIO="$sc" BENCH_CONNS="$conns" BENCH_ROUND="$((ROUND_BASE + round))"
    for attempt in $(seq 0 "$RETRY_NOISY"); do
    if [ "$attempt" -gt 0 ]; then wait_quiet; fi
    if [ "$WARMUP" != 0 ]; then
      "${PIN[@]}" wrk -t"$thr" -c"$conns" -d"${WARMUP}s" --timeout "$TIMEOUT" -s "$HERE/post.lua" "$URL" >/dev/null 2>&1 || true
    fi
    cpu0="$(proc_cpu)"; others_ticks >"$tmp/others0"
    "${PIN[@]}" wrk -t"$thr" -c"$conns" -d"${DURATION}s" --timeout "$TIMEOUT" -s "$HERE/post.lua" "$URL" >"$tmp/wrk.out" 2>&1 || true
    cpu1="$(proc_cpu)"; others_ticks >"$tmp/others1"
    line="$(grep '^{"label"' "$tmp/wrk.out" | tail -1)"
    if [ -z "$line" ]; then echo "wrk failed for $sc:"; cat "$tmp/wrk.out"; continue 2; fi
    chk="$CHECK_JSON"; [ "$stream" = 1 ] && chk="$CHECK_SSE"
    load1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
    gwcpu=""
    if [ -n "$cpu0" ] && [ -n "$cpu1" ]; then  # gateway CPU seconds during the measured run
      gwcpu="\"gw_cpu_s\":$(awk -v a="$cpu0" -v b="$cpu1" -v t="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/t}'),"
    fi
    other="$(other_cpu_s "$tmp/others0" "$tmp/others1")"
    line="${line%\}},$gwcpu\"other_cpu_s\":$other,\"url\":\"$URL\",\"check\":\"$chk\",\"loadgen_cpus\":\"${LOADGEN_CPUS}\",\"load1\":$load1,\"ts\":\"$(date -u +%FT%TZ)\"}"
    if [ "$attempt" -lt "$RETRY_NOISY" ] && awk -v o="$other" -v d="$DURATION" -v m="$NOISE_MAX" 'BEGIN{exit !(o / d > m)}'; then
      echo "# noisy: others used ${other}s of CPU during this ${DURATION}s run; discarded, measuring again" >&2
      continue
    fi
    break
    done
    echo "$line" >> "$OUT"; echo "$line"
    results+=("$line")
  done
done
printf '%s\n' "${results[@]}" | python3 "$HERE/table.py"
