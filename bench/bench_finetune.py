"""Benchmark /finetune's training loop against Hugging Face Trainer, and LoRA against full.

Same model, same blocks, same batch size, same precision, same optimizer settings (AdamW, linear
decay, gradient clipping at 1.0, no weight decay: Trainer's defaults). Each configuration runs in
its own process, so peak memory (max RSS on CPU, max allocated on CUDA) is its own. Prints
steps/s and the ratio ours / Trainer (target >= 0.9). The GPU section (bfloat16 autocast, as
Trainer's bf16=True) runs only when CUDA is available.

    python bench/bench_finetune.py [--model smollm2-135m] [--steps 8] [--batch-size 4] [--block-size 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import subprocess
import sys
import contextlib
import io
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 2  # steps not timed (first-call allocations, lazy inits)


def plugin():
    sys.path.insert(0, str(ROOT))
    from tutor.builtin import finetune

    return finetune


def prepare(args, ft):
    """(model in float32 on the device, training blocks (N, T), device)."""
    import torch

    from tutor.context import Tutor
    from tutor.models import pick_device

    device = "cuda" if args.precision == "bf16" else "cpu"
    tutor = Tutor()
    with tutor.model(args.model, device="cpu") as lm:
        model, tok = lm.model, lm.tokenizer
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen of Python
        import this
    text = codecs.decode(this.s, "rot13") * 40  # a text that is always there
    train, _ = ft.make_blocks(tok(text, add_special_tokens=False).input_ids, args.block_size)
    torch.manual_seed(0)
    model = model.float()
    if args.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=ft.LORA_RANK, lora_alpha=ft.LORA_ALPHA, lora_dropout=0.0,
                                                 task_type="CAUSAL_LM"))
    assert pick_device(device) == device
    return model.to(device), train, device


def run_ours(args, ft) -> list[float]:
    model, train, device = prepare(args, ft)
    plan = ft.Plan(args.steps + WARMUP, args.lr, args.batch_size, 1, args.block_size, 0)
    stamps = []
    for _ in ft.fit(model, train, plan, device):
        if device == "cuda":
            import torch
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return stamps


def run_trainer(args, ft) -> list[float]:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model, train, device = prepare(args, ft)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return len(train)

        def __getitem__(self, i):
            return {"input_ids": train[i], "labels": train[i]}

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(out, per_device_train_batch_size=args.batch_size, max_steps=args.steps + WARMUP,
                                  learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0,
                                  weight_decay=0.0, max_grad_norm=1.0, logging_strategy="no", save_strategy="no",
                                  report_to=[], use_cpu=device == "cpu", bf16=device == "cuda",
                                  dataloader_num_workers=0, disable_tqdm=True, seed=0)
        Trainer(model=model, args=targs, train_dataset=Blocks(), callbacks=[Clock()]).train()
    return stamps


def one(args) -> None:
    """Child process: one configuration; prints a JSON line."""
    import resource

    import torch

    ft = plugin()
    stamps = (run_ours if args.loop == "ours" else run_trainer)(args, ft)
    timed = stamps[WARMUP - 1:]
    steps_per_s = (len(timed) - 1) / (timed[-1] - timed[0])
    peak = (torch.cuda.max_memory_allocated() if args.precision == "bf16"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"steps_per_s": steps_per_s, "peak_mb": peak / 2**20}))


def measure(args, loop: str, method: str, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--one", "--loop", loop, "--method", method, "--precision", precision,
           "--model", args.model, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--block-size", str(args.block_size), "--lr", str(args.lr)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"{loop} {method} {precision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def section(args, precision: str) -> None:
    import torch

    print(f"\n## {precision} on {'CUDA ' + torch.cuda.get_device_name() if precision == 'bf16' else 'CPU'}"
          f" ({torch.get_num_threads()} threads): {args.model}, batch {args.batch_size} x {args.block_size} "
          f"tokens, {args.steps} timed steps after {WARMUP} warm-up, best of {args.repeats} alternating runs")
    print("| method | loop | steps/s | peak memory MB | ours / Trainer |")
    print("|---|---|---|---|---|")
    speed, ratios = {}, {}
    for method in args.methods:
        # alternate the two loops and keep each one's best run: a shared machine's load drifts
        runs = [(loop, measure(args, loop, method, precision)) for _ in range(args.repeats)
                for loop in ("trainer", "ours")]
        r = {loop: max((m for name, m in runs if name == loop), key=lambda m: m["steps_per_s"])
             for loop in ("trainer", "ours")}
        speed[method] = r["ours"]["steps_per_s"]
        ratio = r["ours"]["steps_per_s"] / r["trainer"]["steps_per_s"]
        ratios[method] = (ratio, r)
        for loop in ("trainer", "ours"):
            print(f"| {method} | {loop} | {r[loop]['steps_per_s']:.3f} | {r[loop]['peak_mb']:,.0f} | "
                  + (f"**{ratio:.2f}**" if loop == "ours" else "") + " |", flush=True)
    if len(speed) == 2:
        print(f"LoRA / full speed (our loop): {speed['lora'] / speed['full']:.2f}x")
    return ratios


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=3, help="runs per loop, alternating; the best counts")
    p.add_argument("--quick", action="store_true", help="LoRA only, 3 steps of 2 x 64 tokens, 2 repeats")
    p.add_argument("--out", default=os.environ.get("BENCH_OUT"), help="append JSON lines here")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--loop", choices=["ours", "trainer"], help=argparse.SUPPRESS)
    p.add_argument("--method", choices=["lora", "full"], help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args)
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import Report

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # both loops' child processes: the same threads
    args.methods = ("lora",) if args.quick else ("lora", "full")
    if args.quick:  # small enough that four child runs fit in two minutes on a quiet 2-core machine
        args.steps, args.repeats, args.batch_size, args.block_size = 3, 2, 2, 64
    rep = Report("finetune", args.out)
    for precision in ("fp32", "bf16") if torch.cuda.is_available() else ("fp32",):
        for method, (ratio, r) in section(args, precision).items():
            rep.figure("P5", f"fine-tune {method} steps/s vs HF Trainer ({precision})", ratio, ">= 0.9",
                       detail=f"{r['ours']['steps_per_s']:.3f} vs {r['trainer']['steps_per_s']:.3f} steps/s, "
                              f"batch {args.batch_size} x {args.block_size}, best of {args.repeats} interleaved")
    if not torch.cuda.is_available():
        print("\n## bf16 on CUDA: skipped (no CUDA device here)")


if __name__ == "__main__":
    main()
