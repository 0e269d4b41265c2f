#!/usr/bin/env bash
# Profile a gateway under load with py-spy (bench/setup.sh profile installs it into the venv).
#   bench/profile.sh [relaygate|pyrelay] [SCENARIO] [SECONDS]     default: relaygate nonstream_c64 15
# Starts the fake upstream and the gateway (pinned as in run_relaygate.sh), drives it with wrk for
# SECONDS, samples it with `py-spy record` meanwhile, and writes into $BENCH_HOME/profiles/:
#   NAME-SCENARIO-STAMP.txt      collapsed stacks (one line per stack with its sample count)
#   NAME-SCENARIO-STAMP.svg      flame graph
# then prints the top self-time frames and the top inclusive frames of relaygate's own code.
# Stops what it started.  py-spy needs ptrace rights (root, or kernel.yama.ptrace_scope=0).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"; cd "$HERE"
. "$HERE/lib.sh"
name="${1:-relaygate}"; sc="${2:-nonstream_c64}"; secs="${3:-15}"
./setup.sh profile
PROF="$BENCH_HOME/profiles"; mkdir -p "$PROF"
stamp="$(date -u +%Y%m%dT%H%M%S)"; base="$PROF/$name-$sc-$stamp"
case "$sc" in
  nonstream_c*) stream=0; conns="${sc#nonstream_c}" ;;
  stream_c*) stream=1; conns="${sc#stream_c}" ;;
  *) echo "scenario: nonstream_cN | stream_cN"; exit 2 ;;
esac
port=18090; [ "$name" = pyrelay ] && port=18082
trap './gateways.sh stop "$name" >/dev/null 2>&1 || true; [ "${KEEP_UPSTREAM:-0}" = 1 ] || ./upstream/ctl.sh stop upstream >/dev/null 2>&1 || true' EXIT
./upstream/ctl.sh start upstream
./gateways.sh start "$name" 1
pid="$(cat "$BENCH_HOME/gw/$name.pid")"
export BENCH_KEY=sk-bench BENCH_MODEL=bench-model BENCH_STREAM="$stream" BENCH_LABEL="$name-profile" \
       BENCH_SCENARIO="$sc" BENCH_CONNS="$conns" BENCH_ROUND=1
url="http://127.0.0.1:$port/v1/chat/completions"
taskset -c "${LOADGEN_CPUS:-0}" wrk -t1 -c"$conns" -d2s -s post.lua "$url" >/dev/null 2>&1 || true   # warm-up
taskset -c "${LOADGEN_CPUS:-0}" wrk -t1 -c"$conns" -d"$((secs + 2))s" -s post.lua "$url" > "$base.wrk" 2>&1 &
wrk_pid=$!
sleep 1
"$VENV/bin/py-spy" record --pid "$pid" --duration "$secs" --rate "${RATE:-250}" --format raw ${PYSPY_ARGS:-} -o "$base.txt" --nonblocking >/dev/null 2>&1 || true
"$VENV/bin/py-spy" record --pid "$pid" --duration 3 --rate "${RATE:-250}" -o "$base.svg" --nonblocking >/dev/null 2>&1 || true
wait "$wrk_pid" || true
grep '^{' "$base.wrk" || cat "$base.wrk"
python3 - "$base.txt" <<'PY'
import collections, re, sys
self_t, incl = collections.Counter(), collections.Counter()
total = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip("\n").rpartition(" ")
    if not n.isdigit():
        continue
    n = int(n); total += n
    frames = stack.split(";")
    self_t[frames[-1]] += n
    for f in set(frames):
        incl[f] += n
def short(f):
    return re.sub(r"\(/.*?/(site-packages|src)/", "(", f)
print(f"\n{total} samples.  Top self time:")
for f, n in self_t.most_common(25):
    print(f"  {100*n/total:5.1f}%  {short(f)}")
print("\nInclusive, relaygate frames:")
for f, n in incl.most_common(400):
    if "relaygate" in f:
        print(f"  {100*n/total:5.1f}%  {short(f)}")
PY
echo "profile: $base.txt  flame graph: $base.svg"
