#!/usr/bin/env python3
"""relaygate vs the Python floor, from run.sh JSON lines.

    report.py [--direct LABEL] [--floor LABEL] [--gateway LABEL] FILE...

Prints (Markdown) one table (every run's RPS, p50, p99, and the gateway's CPU µs per request when run.sh knew its
pid) and the verdict against the targets:
  * non-stream c=64: gateway RPS / floor RPS  >= 0.75   (same upstream, same sitting)
  * non-stream c=1:  gateway p50 - direct p50 <  0.5 ms (the latency the gateway adds)
Means are over every run of a label; per-round ratios are shown too, so noise is visible, and so is the
CPU that other processes used during each run ("others' CPU %", of one core; "noisy" above 10%).
Labels default to direct, pyrelay-1w, relaygate-1w (what run_relaygate.sh writes).
"""

from __future__ import annotations

import collections
import json
import statistics
import sys

RPS_TARGET = 0.75
ADDED_P50_TARGET_MS = 0.5
SCENARIO_ORDER = ["nonstream_c1", "nonstream_c64", "stream_c1", "stream_c64"]


NOISY_PCT = 10.0  # others' CPU above this share of one core during a run: marked as noisy


def _others(run: dict) -> str:
    """CPU used during the run by processes outside the harness, in % of one core (noise)."""
    if "other_cpu_s" not in run:
        return "—"
    pct = 100 * run["other_cpu_s"] / max(run["duration_s"], 1e-9)
    return f"{pct:.0f}" + (" (noisy)" if pct > NOISY_PCT else "")


def main(argv: list[str]) -> int:
    args = list(argv)

    def opt(name: str, default: str) -> str:
        if name in args:
            i = args.index(name)
            value = args[i + 1]
            del args[i:i + 2]
            return value
        return default

    direct = opt("--direct", "direct")
    floor = opt("--floor", "pyrelay-1w")
    gateway = opt("--gateway", "relaygate-1w")
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    rows = [json.loads(line) for f in args for line in open(f) if line.startswith("{")]
    runs: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for r in rows:
        runs[(r["label"], r["scenario"])].append(r)
    labels = list(dict.fromkeys(r["label"] for r in rows))
    scenarios = sorted({r["scenario"] for r in rows},
                       key=lambda s: (SCENARIO_ORDER.index(s) if s in SCENARIO_ORDER else 99, s))

    def mean(label: str, sc: str, key: str) -> float | None:
        rs = runs.get((label, sc))
        return statistics.fmean(x[key] for x in rs) if rs else None

    out: list[str] = []
    out.append("| target | scenario | runs | RPS (each run) | mean RPS | p50 ms (each run) | p99 ms (each run) "
               "| gateway CPU µs/req | errors | others' CPU % |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for label in labels:
        for sc in scenarios:
            rs = runs.get((label, sc))
            if not rs:
                continue

            def each(key: str, fmt: str, rs: list[dict] = rs) -> str:
                return " / ".join(fmt.format(x[key]) for x in rs)

            cpu = [1e6 * x["gw_cpu_s"] / x["requests"] for x in rs if x.get("gw_cpu_s") and x["requests"]]
            cpu_s = " / ".join(f"{c:.0f}" for c in cpu) if cpu else "—"
            errs = sum(x["non2xx"] + x["socket_errors"] for x in rs)
            load = " / ".join(_others(x) for x in rs)
            out.append(f"| {label} | {sc} | {len(rs)} | {each('rps', '{:.0f}')} | {mean(label, sc, 'rps'):.0f} | "
                       f"{each('p50_ms', '{:.3f}')} | {each('p99_ms', '{:.2f}')} | {cpu_s} | {errs} | {load} |")
    noisy = [r for r in rows if "(noisy)" in _others(r)]
    if noisy:
        out.append(f"{len(noisy)} of {len(rows)} runs were noisy (others used > {NOISY_PCT:.0f}% of a core "
                   "meanwhile); their figures are depressed.")
    bad = [r for r in rows if not str(r.get("check", "ok")).startswith("ok")]
    out.append("")
    if bad:
        out.append(f"WARNING: {len(bad)} run(s) whose functional pre-check failed: "
                   + ", ".join(sorted({f"{r['label']}:{r['check']}" for r in bad})))
        out.append("")

    def per_round_ratio(sc: str) -> str:
        g = {r["round"]: r["rps"] for r in runs.get((gateway, sc), []) if "round" in r}
        f = {r["round"]: r["rps"] for r in runs.get((floor, sc), []) if "round" in r}
        common = [k for k in g if k in f]
        return " / ".join(f"{g[k] / f[k]:.2f}" for k in common) if common else "—"

    out.append(f"| figure | {gateway} | target | verdict |")
    out.append("|---|---|---|---|")
    verdicts = []
    for sc, is_target in (("nonstream_c64", True), ("stream_c64", False)):
        g, f = mean(gateway, sc, "rps"), mean(floor, sc, "rps")
        if g is None or f is None:
            continue
        ratio = g / f
        line = f"| RPS / {floor} RPS, {sc} (per round: {per_round_ratio(sc)}) | {ratio:.2f} ({g:.0f} / {f:.0f}) |"
        if is_target:
            ok = ratio >= RPS_TARGET
            verdicts.append(ok)
            line += f" ≥ {RPS_TARGET:.2f} | {'MET' if ok else 'MISSED'} |"
        else:
            line += " — | (reported) |"
        out.append(line)
    for sc, is_target in (("nonstream_c1", True), ("stream_c1", False)):
        g, d, f = mean(gateway, sc, "p50_ms"), mean(direct, sc, "p50_ms"), mean(floor, sc, "p50_ms")
        if g is None:
            continue
        if d is not None:
            added = g - d
            line = f"| added p50 vs {direct}, {sc} | {added:+.3f} ms ({g:.3f} − {d:.3f}) |"
            if is_target:
                ok = added < ADDED_P50_TARGET_MS
                verdicts.append(ok)
                line += f" < {ADDED_P50_TARGET_MS} ms | {'MET' if ok else 'MISSED'} |"
            else:
                line += " — | (reported) |"
            out.append(line)
        if f is not None:
            out.append(f"| added p50 vs {floor}, {sc} | {g - f:+.3f} ms ({g:.3f} − {f:.3f}) | — | (reported) |")
    for sc in ("nonstream_c64", "stream_c64"):
        for label in (floor, gateway):
            cpu = [1e6 * x["gw_cpu_s"] / x["requests"] for x in runs.get((label, sc), [])
                   if x.get("gw_cpu_s") and x["requests"]]
            if cpu:
                out.append(f"| CPU µs/request, {label}, {sc} | {statistics.fmean(cpu):.0f} | — | (reported) |")
    if verdicts:
        out.append("")
        out.append("targets: " + ("all MET" if all(verdicts) else "MISSED"))
    print("\n".join(out))  # Markdown; readable as is in a terminal
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
