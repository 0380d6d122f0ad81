#!/usr/bin/env python3
"""Writes BENCHMARKS.md from the JSON lines the benchmarks appended (nexus_testkit::bench).

Usage: bench_report.py RESULTS.jsonl OUT.md [cargo bench exit status]
Each figure is listed with its same-run baseline, the compared figure, the goal and the verdict,
grouped by service with a summary line each, under the machine the run was made on.
"""
import datetime
import json
import os
import platform
import sys


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown memory"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    load = ""
    try:
        load = " · load at the end {:.2} {:.2} {:.2}".format(*os.getloadavg())
    except OSError:
        pass
    return f"{cpu} · {os.cpu_count()} cores · {mem} · {platform.system()} {platform.release()}{load}"


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"


def main():
    src, out = sys.argv[1], sys.argv[2]
    status = sys.argv[3] if len(sys.argv) > 3 else "0"
    rows = []
    if os.path.exists(src):
        with open(src) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    by_service = {}
    for r in rows:
        by_service.setdefault(r["bench"].split("/", 1)[0], []).append(r)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`deploy/local/bench_report.py`); every ratio is against a baseline "
        "measured in the same run, so the machine's speed cancels out, not its load.",
        "",
        f"- Run: {now}",
        f"- Machine: {machine()}",
        f"- `cargo bench` exit status: {status}",
        f"- Figures: {len(rows)}, passing: {sum(1 for r in rows if r['pass'])}",
        "",
        "## Summary",
        "",
        "| service | figures | pass | miss |",
        "|---|---|---|---|",
    ]
    for svc, rs in sorted(by_service.items()):
        ok = sum(1 for r in rs if r["pass"])
        lines.append(f"| {svc} | {len(rs)} | {ok} | {len(rs) - ok} |")
    for svc, rs in sorted(by_service.items()):
        lines += ["", f"## {svc}", "", "| bench | figure | value | baseline (same run) | compared | goal | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for r in rs:
            base = r.get("baseline")
            base_txt = f"{base['what']}: {fmt(base['value'])} {base['unit']}" if base else "—"
            compared = fmt(r["compared"]) + ("" if base else f" {r['unit']}")
            goal = (">= " if r["goal"]["kind"] == "at_least" else "<= ") + f"{r['goal']['value']}"
            lines.append(
                f"| {r['bench']} | {r['name']} | {fmt(r['value'])} {r['unit']} | {base_txt} | {compared} | {goal} | "
                f"{'PASS' if r['pass'] else 'MISS'} |"
            )
    if not rows:
        lines += ["", "No figures were recorded (did every benchmark fail to start?)."]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"bench: {len(rows)} figures written to {out}")


if __name__ == "__main__":
    main()
