"""Every benchmark, one after another, then one table of the figures with their goals (P1-P8).

    python -m bench --quick       # each benchmark in its quick mode (under ~2 minutes each)
    python -m bench               # full sizes and repeats (long)
    python -m bench --only bpe,inspect

Each benchmark runs in its own process under a time limit and appends its figures to one
JSON-lines file as it measures them, so one that times out or fails keeps what it measured and
the others still run. All run under the same environment (threads, allocator: the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["tokenize", "bpe", "generate", "finetune", "models", "web", "inspect", "gpu"]


def run(name: str, quick: bool, out: Path, limit: float) -> str:
    """Run bench_NAME (gpu.py for gpu); '' when it finished, else what went wrong."""
    script = HERE / ("gpu.py" if name == "gpu" else f"bench_{name}.py")
    cmd = [sys.executable, str(script), "--out", str(out)] + (["--quick"] if quick else [])
    print(f"\n=== {name} ===", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, timeout=limit)
    except subprocess.TimeoutExpired:
        return f"timed out after {limit:.0f} s (figures measured before that are kept)"
    if done.returncode:
        return f"exited with {done.returncode} after {time.monotonic() - start:.0f} s"
    return ""


def table(rows: list[dict], problems: dict[str, str]) -> str:
    lines = ["| goal | figure | measured | target | met |", "|---|---|---|---|---|"]
    for r in sorted((r for r in rows if r["goal"]), key=lambda r: (r["goal"], r["time"])):
        value = "n/a" if r["value"] is None else f"{r['value']:.3g}{r['unit']}"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['goal']} | {r['figure']} | {value} | {r['target']} | {met} |")
    for name, why in problems.items():
        lines.append(f"| | bench_{name}: {why} | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated benchmark names: " + ", ".join(ORDER))
    ap.add_argument("--out", default=None, help="the JSON-lines file (default: bench-results-TIME.jsonl here)")
    ap.add_argument("--limit", type=float, default=None, help="seconds per benchmark (default 300 quick, 3600 full)")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or ORDER
    out = Path(args.out or f"bench-results-{time.strftime('%Y%m%d-%H%M%S')}.jsonl").resolve()
    limit = args.limit or (300 if args.quick else 3600)
    os.environ.setdefault("TUTOR_OFFLINE", "yes")
    problems = {name: why for name in names if (why := run(name, args.quick, out, limit))}
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    for name in names:  # a benchmark that ended (say, on an error in a thread) before its goal figure
        if name not in problems and name != "gpu" and not any(r["bench"] == name and r["goal"] for r in rows):
            problems[name] = "finished without a goal figure (see its output above)"
    print(f"\n{'quick' if args.quick else 'full'} run, figures in {out}\n")
    print(table(rows, problems))


if __name__ == "__main__":
    main()
