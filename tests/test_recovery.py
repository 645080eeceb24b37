"""A crash loses nothing that was saved (#15 problem 8): a real `kill -9` of a process running a
fine-tune on a tiny random GPT-2, then a restart that lists the job as interrupted and resumes it
from its last checkpoint; a kill during a save leaves no `.tmp-*` folder after the next start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from crash import job_row, kill_9, wait_for
from test_finetune import TEXT, ask, make_tutor, plugin_module

TESTS = Path(__file__).parent
RUN = "--steps 24 --block-size 32 --batch-size 4 --lr 3e-3 --checkpoint-every 4"


def _child(script: str, tmp_path: Path) -> subprocess.Popen:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_during_a_finetune_then_resume_from_the_checkpoint(tmp_path):
    home, notes = tmp_path / "home", tmp_path / "notes.txt"
    notes.write_text(TEXT)
    proc = _child(f"""
        import torch
        torch.set_num_threads(1)
        from pathlib import Path
        from test_finetune import make_tutor
        from tutor import chat
        tt = make_tutor(Path({str(home)!r}))
        for reply in chat.respond("/finetune tiny-gpt2 --file {notes} {RUN}", tt.session("ada")):
            pass
    """, tmp_path)
    job_id, step = wait_for(lambda: job_row(home / "jobs.sqlite3", "id, step", "checkpoint IS NOT NULL"), proc)
    kill_9(proc)
    notes.unlink()  # the upload may be gone after a restart: the job kept its own copy

    tt = make_tutor(home)  # the restart
    listed = ask(tt, "/jobs")
    (job,) = listed.data["jobs"]
    assert job["id"] == job_id and job["state"] == "interrupted" and job["step"] >= step >= 4 and job["checkpoint"]
    assert job["checkpoint_step"] % 4 == 0 and 4 <= job["checkpoint_step"] <= job["step"]
    assert f"/finetune resume {job_id}" in listed.buttons
    assert ask(tt, "/finetune resume finetune-99").error
    assert ask(tt, f"/finetune resume {job_id}", learner="bob").error  # not bob's job

    done = ask(tt, f"/finetune resume {job_id}")
    assert not done.error, done.text
    d = done.data
    assert d["job"] == job_id and d["steps"] == 24 and len(d["train_losses"]) == 24 and d["model_id"] == "ft-ada-1"
    assert d["val_losses"][0][0] == 0 and d["val_losses"][-1][0] == 24  # the curve from before the crash too
    assert ask(tt, "/jobs").data["jobs"][0]["state"] == "done"
    assert not (home / "jobs" / job_id).exists()  # the spent checkpoint is removed
    assert not list(home.rglob(".tmp-*"))
    with tt.session("ada").context().model("ft-ada-1"):
        pass
    again = make_tutor(home)  # a second restart: the job stays done, the model stays registered
    assert ask(again, "/jobs").data["jobs"][0]["state"] == "done"
    assert again.registry.lookup("models", "ft-ada-1") is not None


def test_kill_9_during_the_save_leaves_no_tmp_folder_after_a_restart(tmp_path):
    home = tmp_path / "home"
    proc = _child(f"""
        import time
        from pathlib import Path
        from tutor.plugins import _load_file, builtin_dir
        ft = _load_file(builtin_dir("plugins") / "finetune.py", "child")
        def slow(tmp):
            (tmp / "model.safetensors").write_bytes(b"half a model")
            time.sleep(600)  # killed here, mid-save
        ft.save_atomic(Path({str(home)!r}) / "models" / "ft-ada-1", slow, {{"id": "ft-ada-1"}})
    """, tmp_path)
    wait_for(lambda: list((home / "models").glob(".tmp-*/model.safetensors")) if (home / "models").is_dir() else None, proc)
    kill_9(proc)
    assert list((home / "models").glob(".tmp-*"))  # what the crash left
    tt = make_tutor(home)
    assert not list((home / "models").glob(".tmp-*"))
    assert not (home / "models" / "ft-ada-1").exists() and tt.registry.lookup("models", "ft-ada-1") is None


def test_a_live_processs_tmp_folder_and_running_job_are_left_alone(tmp_path):
    """Two processes may share a data dir: only a dead process's leftovers are cleaned up."""
    from tutor.jobs import Jobs

    home = tmp_path / "home"
    ft = plugin_module()
    live = home / "models" / f".tmp-ft-x-{os.getpid()}-abc"
    live.mkdir(parents=True)
    assert ft.remove_leftovers(home) == [] and live.exists()
    jobs = Jobs(home)
    job = jobs.submit("ada", "demo", "sleeps", lambda job: iter(time.sleep(1) or []))
    time.sleep(0.2)
    assert [j.status for j in Jobs(home).all() if j.id == job.id] == ["running"]  # alive: not "interrupted"
    job.wait(5)


def test_a_resumed_run_trains_exactly_as_an_uninterrupted_one():
    """Weights, optimizer, scheduler and RNG from step 4 continue to the same losses (dropout on)."""
    import torch

    from test_finetune import tiny_gpt2

    ft = plugin_module()
    blocks = torch.randint(0, 257, (12, 16))
    plan = ft.Plan(steps=10, lr=3e-3, batch_size=4, grad_accum=2, block_size=16, seed=0)
    torch.manual_seed(123)
    whole = [i.loss for i in ft.fit(tiny_gpt2(seed=1), blocks, plan, "cpu")]

    torch.manual_seed(123)
    first = tiny_gpt2(seed=1)
    run = ft.fit(first, blocks, plan, "cpu")
    head = [next(run) for _ in range(4)]
    saved = {"step": 4, "tokens": head[-1].tokens, "seconds": head[-1].seconds, **head[-1].state()}
    weights = {n: p.detach().clone() for n, p in first.named_parameters()}
    rng = torch.get_rng_state()
    run.close()  # the process died here

    torch.manual_seed(999)  # a new process: another RNG state, a freshly built model
    second = tiny_gpt2(seed=2)
    second.load_state_dict(weights, strict=False)
    torch.set_rng_state(rng)
    tail = [i.loss for i in ft.fit(second, blocks, plan, "cpu", resume=saved)]
    assert len(tail) == 6
    assert [i.loss for i in head] + tail == pytest.approx(whole, rel=1e-5)


def test_a_failed_job_keeps_no_copy_and_is_not_resumed(tmp_path):
    home, notes = tmp_path / "home", tmp_path / "notes.txt"
    notes.write_text(TEXT)
    tt = make_tutor(home)
    r = ask(tt, f"/finetune tiny-gpt2 --file {notes} --block-size 256")  # longer than the model's context
    assert r.error and "context" in r.text
    assert not (home / "jobs").is_dir() or not list((home / "jobs").iterdir())
    (job,) = tt.jobs.of("ada")
    assert "only an interrupted job" in ask(tt, f"/finetune resume {job.id}").text


def test_a_jobs_file_from_an_older_tutor_gains_the_new_columns(tmp_path):
    """A data dir keeps its jobs file across upgrades: the store adds the columns it lacks."""
    import sqlite3

    from tutor.jobs import Jobs

    (tmp_path / "home").mkdir()
    with sqlite3.connect(tmp_path / "home" / "jobs.sqlite3") as conn:
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT, kind TEXT, title TEXT, seq INTEGER UNIQUE, "
                     "status TEXT, params TEXT, step INTEGER, checkpoint TEXT, created REAL, started REAL, "
                     "finished REAL, pid INTEGER, result TEXT)")
        conn.execute("INSERT INTO jobs VALUES ('finetune-1', 'ada', 'finetune', 't', 1, 'running', '{}', 7, "
                     "'/x/checkpoint.pt', 0, 0, NULL, 999999999, NULL)")
    (job,) = Jobs(tmp_path / "home").all()
    assert job.id == "finetune-1" and job.status == "interrupted" and job.step == 7 and job.checkpoint_step == 0
