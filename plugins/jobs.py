"""/jobs: your background jobs (fine-tuning, ...), their progress and their results."""

import time

from tutor import Reply, Table, hookimpl


def jobs(ctx) -> Reply:
    """List your background jobs: what runs, how far it is, and what finished.

    Long work such as /finetune keeps running when you reload the page; come back here to see it.
    """
    mine = ctx.tutor.jobs.of(ctx.session.learner_id)
    if not mine:
        return Reply(text="You have no background jobs. Long tools such as /finetune start one.",
                     data={"jobs": []})
    rows, facts = [], []
    for j in mine:
        shown = j.result or j.latest
        progress = 1.0 if j.result else (shown.progress if shown and shown.progress is not None else 0.0)
        ran = (j.finished or time.time()) - (j.started or time.time())
        summary = (shown.text.splitlines()[0] if shown and shown.text else "")[:160]
        rows.append([j.id, j.title, j.status, f"{progress:.0%}", f"{int(ran) // 60}:{int(ran) % 60:02d}", summary])
        facts.append({"id": j.id, "kind": j.kind, "title": j.title, "state": j.status, "status": j.status,
                      "step": j.step, "checkpoint": j.checkpoint is not None, "checkpoint_step": j.checkpoint_step, "progress": progress,
                      "result": j.result.data if j.result else None})
    active = [j for j in mine if j.active]
    stopped = [j for j in mine if j.status == "interrupted"]
    buttons = ([f"/{active[-1].kind} status"] if active else []) + [f"/{j.kind} resume {j.id}" for j in stopped]
    note = f" {len(stopped)} interrupted when the tutor stopped; resume with the button." if stopped else ""
    return Reply(text=f"{len(active)} running or queued, {len(mine) - len(active)} finished.{note}",
                 table=Table(["job", "what", "status", "progress", "time", "latest"], rows),
                 data={"jobs": facts}, buttons=buttons)


@hookimpl
def register_tools(register):
    register(jobs, example="/jobs",
             phrases=['background jobs', 'my jobs', 'running jobs'])
