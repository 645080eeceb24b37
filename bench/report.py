"""Figures as they are measured: each one printed with its goal (P1-P8 of issue #18) and
appended to a JSON-lines file at once, so a part that times out later loses nothing.

    rep = Report("tokenize")                    # --out FILE, or $BENCH_OUT, or no file
    rep.figure("P2", "/count gpt2 vs tiktoken r50k", 0.97, ">= 0.9", detail="200 KB, best of 5")

`python -m bench` reads the files back and prints one table.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import time
from pathlib import Path

GOALS = {
    "P1": "/count, tiktoken encodings, vs tiktoken",
    "P2": "/count and /tokenize gpt2 vs tiktoken r50k",
    "P3": "BPE 2,000 merges vs HF Rust; vs recount; vs minbpe",
    "P4": "/generate vs transformers generate; 4 learners vs 1; local vs transformers serve",
    "P5": "fine-tune steps/s vs HF Trainer, same settings",
    "P6": "converted load vs GGUF; 20 threads",
    "P7": "p95 with 50 learners vs 1 (light HTTP client)",
    "P8": "/inspect --order and /lens (with figure) vs a plain forward",
    "GPU": "tokens/s against the bandwidth bound",
}
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


def arguments(doc: str | None = None, **extra: dict) -> argparse.ArgumentParser:
    """The options every benchmark takes: --quick (under 2 minutes) and --out FILE."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats: under 2 minutes")
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT"), help="append JSON lines here")
    for flag, kwargs in extra.items():
        ap.add_argument(flag, **kwargs)
    return ap


def met(value: float | None, target: str) -> bool | None:
    """Whether `value` meets a target like '>= 0.9' or '<= 1.5'; None when there is nothing to judge."""
    parts = target.split()
    if value is None or len(parts) != 2 or parts[0] not in _OPS:
        return None
    return _OPS[parts[0]](value, float(parts[1]))


class Report:
    def __init__(self, bench: str, out: str | None = None):
        self.bench, self.path = bench, Path(out) if out else None

    def figure(self, goal: str, label: str, value: float | None, target: str = "report", *,
               unit: str = "x", detail: str = "") -> dict:
        row = {"bench": self.bench, "goal": goal, "figure": label, "value": value, "unit": unit,
               "target": target, "met": met(value, target), "detail": detail, "time": time.time()}
        shown = "n/a" if value is None else f"{value:.3g}{unit}"
        verdict = {True: "met", False: "NOT met", None: ""}[row["met"]]
        print(f"  [{goal}] {label}: {shown}  (goal {target}) {verdict}  {detail}".rstrip(), flush=True)
        self.write(row)
        return row

    def note(self, label: str, detail: str) -> None:
        """Something measured that has no goal of its own (a peer's raw speed, a breakdown)."""
        print(f"  {label}: {detail}", flush=True)
        self.write({"bench": self.bench, "goal": "", "figure": label, "value": None, "unit": "",
                    "target": "", "met": None, "detail": detail, "time": time.time()})

    def write(self, row: dict) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
