"""Benchmark recovery after `kill -9`: during a fine-tune, and during the save of its model.

A child process runs `/finetune` with a checkpoint every C steps; it is killed with SIGKILL
(a) half-way between two checkpoints, (b) while its model folder is being written. Then, in this
process, the tutor restarts on the same data dir. Prints for each: the restart time (tutor up,
leftovers removed, the job listed as interrupted), the time from `/finetune resume` to the first
new step, the ratio of that to a fresh job's time to its first step in the same run, and what
was lost (steps trained since the last checkpoint, and whether any `.tmp-*` folder was left).

    python bench/bench_recovery.py [--model smollm2-135m | --tiny] [--steps 40] [--every 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from crash import job_row, kill_9, wait_for  # noqa: E402

TINY_PLUGIN = '''
from tutor import hookimpl
from tutor.models import ModelSpec

def _load(req):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from tutor.assets import GPT2_TIKTOKEN, package_file
    from tutor.settings import Settings
    from tutor.tokenizers import gpt2_transformers_tokenizer

    torch.manual_seed(0)
    tok = gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, Settings().assets)))
    config = GPT2Config(n_positions=256, n_embd=64, n_layer=2, n_head=2)
    return GPT2LMHeadModel(config).to(req.device), tok

@hookimpl
def register_models(register):
    register(ModelSpec("tiny-gpt2", "tiny GPT-2 (benchmark stand-in, random weights)", "gpt2", "causal-lm", _load))
'''

CHILD = '''
import os, sys
sys.path.insert(0, {root!r})
from tutor import chat
from tutor.context import Tutor
for reply in chat.respond({command!r}, Tutor().session("bench")):
    pass
'''


def _row(db: Path) -> tuple | None:
    return job_row(db, "id, step, checkpoint, status", "owner = 'bench'")


def _start(home: Path, command: str, env: dict) -> subprocess.Popen:
    script = home.parent / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), command=command))
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _restart_and_resume(home: Path, job_id: str) -> dict:
    """Time the restart (to /jobs listing the job) and the resume (to its first new step)."""
    from tutor import chat
    from tutor.context import Tutor

    leftovers = [str(p) for p in home.rglob(".tmp-*")]
    t0 = time.perf_counter()
    tutor = Tutor()
    session = tutor.session("bench")
    listed = chat.final("/jobs", session).data["jobs"]
    restart_s = time.perf_counter() - t0
    job = next(j for j in listed if j["id"] == job_id)
    t_imports = time.perf_counter()
    import peft, torch, transformers  # noqa: F401,E401  (a restarted process pays these once)
    imports_s = time.perf_counter() - t_imports
    t1, first_step, checkpoint_step = time.perf_counter(), None, job["checkpoint_step"]
    final = None
    for reply in chat.respond(f"/finetune resume {job_id}", session):
        if first_step is None and reply.data.get("step", 0) > 0:
            first_step = time.perf_counter() - t1
        final = reply
    return {"tutor": tutor, "restart_s": restart_s, "imports_s": imports_s, "state": job["state"], "step_listed": job["step"],
            "leftovers_before": leftovers, "leftovers_after": [str(p) for p in home.rglob(".tmp-*")],
            "resume_to_step_s": first_step, "final": final, "checkpoint_step": checkpoint_step}


def _fresh_first_step(tutor, command: str) -> float:
    from tutor import chat

    t0 = time.perf_counter()
    for reply in chat.respond(command, tutor.session("fresh")):
        if reply.data.get("step", 0) > 0:
            return time.perf_counter() - t0
    return float("nan")


def during_training(args, env: dict, command: str) -> None:
    home = Path(env["TUTOR_HOME"])
    proc = _start(home, command, env)
    db = home / "jobs.sqlite3"
    first = wait_for(lambda: (r := _row(db)) and r[2] and r, proc, timeout=1800)
    target = first[1] + args.every // 2  # half-way to the next checkpoint
    at_kill = wait_for(lambda: (r := _row(db)) and r[1] >= target and r, proc, timeout=1800, poll=0.01)
    kill_9(proc)
    out = _restart_and_resume(home, first[0])
    fresh = _fresh_first_step(out["tutor"], command.replace(f"--steps {args.steps}", "--steps 2"))
    lost = at_kill[1] - out["checkpoint_step"]
    print(f"kill -9 during training (killed at step >= {at_kill[1]} of {args.steps}, checkpoint every {args.every}):")
    print(f"  restart (tutor up, /jobs lists it as {out['state']!r} at step {out['step_listed']}): {out['restart_s']:.2f} s;"
          f" then importing torch, transformers, peft: {out['imports_s']:.2f} s")
    print(f"  /finetune resume -> first new step: {out['resume_to_step_s']:.2f} s (the restarted process's first "
          f"model use); a fresh job afterwards (warm process) -> first step: {fresh:.2f} s; "
          f"ratio resume / fresh {out['resume_to_step_s'] / fresh:.2f}")
    print(f"  lost: about {lost} steps (trained after the last checkpoint, at step {out['checkpoint_step']}); "
          f"finished with {out['final'].data.get('steps')} steps, error={out['final'].error}")


def during_save(args, env: dict, command: str) -> None:
    home = Path(env["TUTOR_HOME"])
    models = home / "models"
    for attempt in range(5):  # a small model's save is quick: the kill may come too late
        proc = _start(home, command, env)
        found = wait_for(lambda: (list(models.glob(".tmp-*")) if models.is_dir() else None)
                       or (proc.poll() is not None and ["done"]), proc, timeout=1800, poll=0.001)
        if found != ["done"]:
            break
        print(f"  (attempt {attempt + 1}: the save finished before the kill; again)")
    kill_9(proc)
    job_id = _row(home / "jobs.sqlite3")[0]
    out = _restart_and_resume(home, job_id)
    print("kill -9 during the save of the fine-tuned model:")
    print(f"  left behind: {len(out['leftovers_before'])} .tmp-* folder(s); after the restart: "
          f"{len(out['leftovers_after'])}")
    print(f"  restart: {out['restart_s']:.2f} s (job {out['state']!r}, checkpoint at step {out['checkpoint_step']})")
    print(f"  lost: {args.steps - out['checkpoint_step']} steps (after the last checkpoint); resume -> first new "
          f"step {out['resume_to_step_s'] or float('nan'):.2f} s; finished with {out['final'].data.get('steps')} steps")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--tiny", action="store_true", help="a tiny random GPT-2 instead (seconds, not minutes)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--every", type=int, default=10)
    args = p.parse_args()
    from corpus import english

    for case in (during_training, during_save):
        with tempfile.TemporaryDirectory() as tmp:
            home, plugins = Path(tmp) / "home", Path(tmp) / "plugins"
            home.mkdir()
            notes = Path(tmp) / "notes.txt"
            notes.write_text(english(60_000))
            env = {**os.environ, "TUTOR_HOME": str(home)}
            model = args.model
            if args.tiny:
                plugins.mkdir()
                (plugins / "tiny_bench.py").write_text(textwrap.dedent(TINY_PLUGIN))
                env["TUTOR_PLUGINS_DIR"] = f'["{plugins}"]'
                model = "tiny-gpt2"
            os.environ.update(env)  # the restart in this process sees the same data dir
            command = (f"/finetune {model} --file {notes} --steps {args.steps} --checkpoint-every {args.every} "
                       "--block-size 64 --batch-size 4")
            case(args, env, command)


if __name__ == "__main__":
    main()
