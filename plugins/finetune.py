"""/finetune: train a real model on your own text and watch it learn.

The steps, in the order a job runs them:
  read the file (checks) -> tokenize -> cut into blocks of T tokens, the last ~10% held out
  -> copy the model (the shared one stays untouched) -> LoRA adapters or all weights trainable
  -> loss / perplexity / generations before -> AdamW steps (loss = the model's own
  next-token cross-entropy) with a live loss curve -> the same measures after
  -> save atomically under TUTOR_HOME/models/<id> -> register <id> so /generate can use it.

The training runs as a background job (tutor/jobs.py): reloading the page does not stop it;
`/finetune status` follows it again, `/finetune cancel` (or Stop) ends it within one step and
still saves what was learned so far. Saved models are found again when the tutor restarts.
Every `--checkpoint-every` steps the trainable weights, optimizer, scheduler and RNG are saved
(one file, written then renamed); after a crash, `/jobs` lists the job as interrupted and
`/finetune resume ID` continues from that checkpoint exactly as the run would have gone on.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal

from tutor import Arg, File, Reply, Table, ToolError, hookimpl
from tutor.anatomy import context_limit
from tutor.models import ModelSpec

MANIFEST = "tutor-model.json"  # written last inside the folder: a folder with it is complete
HELD_OUT = 0.1  # share of the text's blocks kept aside to measure generalisation
EVAL_BLOCKS = 8  # held-out blocks used for every held-out loss (same ones before, during, after)
NEW_TOKENS = 24  # tokens generated per prompt, before and after
FIXED_PROMPT = "Once upon a time"
SCRATCH_SMALL = "gpt2-small-config"  # --from-scratch with no model: a small GPT-2, random init
LORA_RANK, LORA_ALPHA = 8, 16
DEFAULT_LR = {"lora": 1e-3, "full": 5e-5, "scratch": 1e-3}
log = logging.getLogger("tutor.finetune")


# ---- reading the learner's file -------------------------------------------------------------

CORPORA = {"python-docs": Path(__file__).parent / "data" / "python-docs.txt"}  # see plugins/data/README.md


# ---- data: blocks and batches ---------------------------------------------------------------

def make_blocks(ids: list[int], block: int):
    """Cut token ids into non-overlapping blocks of `block` tokens: (train (N, T), held-out (M, T)).

    e.g. 1,000 tokens, block 128 -> 7 blocks -> 6 to train on, 1 held out (the text's end)."""
    import torch

    n = len(ids) // block
    if n < 2:
        raise ToolError(f"The text is {len(ids):,} tokens long; with --block-size {block} it needs at least "
                        f"{2 * block:,} tokens (one block to train on, one held out), roughly "
                        f"{2 * block * 4:,} characters of English. Add text or lower --block-size.")
    blocks = torch.tensor(ids[: n * block]).view(n, block)  # (N, T)
    held = max(1, round(n * HELD_OUT))
    return blocks[: n - held], blocks[n - held:]


def batch_order(n_blocks: int, batch: int, count: int, seed: int) -> list:
    """`count` batches of `batch` block indices: shuffled epochs, reproducible from `seed`."""
    import torch

    g = torch.Generator().manual_seed(seed)
    need = count * batch
    order = torch.cat([torch.randperm(n_blocks, generator=g) for _ in range(-(-need // n_blocks))])
    return [order[i * batch:(i + 1) * batch] for i in range(count)]


# ---- the training loop ----------------------------------------------------------------------

@dataclass
class Plan:
    steps: int
    lr: float
    batch_size: int
    grad_accum: int
    block_size: int
    seed: int
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # the same defaults as transformers.Trainer, so runs compare


@dataclass
class StepInfo:
    step: int  # optimizer steps done
    loss: float  # mean over the micro-batches of this step
    tokens: int  # tokens trained on so far
    seconds: float  # time spent in training steps so far
    state: Callable[[], dict] = dict  # the optimizer's and scheduler's state now (for a checkpoint)


def autocast(device: str):
    """bfloat16 autocast on CUDA (fp32 master weights); plain float32 elsewhere."""
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def fit(model, train_blocks, plan: Plan, device: str, stop: Callable[[], bool] = lambda: False,
        resume: dict | None = None) -> Iterator[StepInfo]:
    """AdamW on the model's own loss; yields after every optimizer step. Linear LR decay and
    gradient clipping at 1.0, as transformers.Trainer does by default. `stop()` is checked before
    every micro-batch, so a cancel ends the run within one step. `resume` (a checkpoint's step,
    tokens, seconds and the `state()` of a StepInfo) continues where that run stopped: the batch
    order comes from the seed, so step k trains on the same blocks either way."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    try:  # fused: one kernel for all parameters, as Trainer's default optimizer (adamw_torch_fused)
        opt = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # a device without the fused kernel
        opt = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, 0, plan.steps)
    batches = batch_order(len(train_blocks), plan.batch_size, plan.steps * plan.grad_accum, plan.seed)
    model.train()  # dropout on while training
    tokens, seconds, first = 0, 0.0, 0
    if resume:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        tokens, seconds, first = resume["tokens"], resume["seconds"], resume["step"]
    state = lambda: {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    for step in range(first, plan.steps):
        start, total = time.perf_counter(), 0.0  # total: a tensor until the step ends (one sync per step)
        for micro in range(plan.grad_accum):
            if stop():
                return
            x = train_blocks[batches[step * plan.grad_accum + micro]].to(device)  # (B, T)
            with autocast(device):
                # the model shifts labels by one itself; no KV cache while training (as Trainer)
                loss = model(input_ids=x, labels=x, use_cache=False).loss
            (loss / plan.grad_accum).backward()
            total = total + loss.detach()
            tokens += x.numel()
        torch.nn.utils.clip_grad_norm_(params, plan.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        mean = total.item() / plan.grad_accum
        seconds += time.perf_counter() - start
        yield StepInfo(step + 1, mean, tokens, seconds, state)


def held_out_loss(model, blocks, device: str, batch: int = 4) -> float:
    """Mean next-token loss on held-out blocks (eval mode, no gradients)."""
    import torch

    was_training = model.training
    model.eval()
    losses = []
    with torch.no_grad(), autocast(device):
        for i in range(0, len(blocks), batch):
            x = blocks[i:i + batch].to(device)
            losses.append(model(input_ids=x, labels=x, use_cache=False).loss.item() * len(x))
    model.train(was_training)
    return sum(losses) / len(blocks)


def generate(model, tokenizer, prompts: list[str], device: str) -> list[str]:
    """Greedy continuations (deterministic, so before/after and reload compare exactly)."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                 do_sample=False, pad_token_id=tokenizer.eos_token_id)
            out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
    model.train(was_training)
    return out


# ---- what changed ---------------------------------------------------------------------------

def _group(name: str) -> str:
    """model.layers.3.self_attn.q_proj.weight -> model.layers.*.self_attn.q_proj"""
    name = re.sub(r"\.\d+\.", ".*.", name)
    return re.sub(r"\.(weight|bias|base_layer)$", "", name.replace(".base_layer", ""))


def update_norms(before: dict, model) -> list[list]:
    """Full fine-tuning: per module group, ||W_after - W_before|| and its size relative to ||W||."""
    sums: dict[str, list[float]] = {}
    for name, p in model.named_parameters():
        if name in before:
            s = sums.setdefault(_group(name), [0, 0.0, 0.0])
            s[0] += p.numel()
            s[1] += (p.detach().float().cpu() - before[name]).pow(2).sum().item()
            s[2] += before[name].pow(2).sum().item()
    return _rows(sums)


def lora_updates(model) -> list[list]:
    """LoRA: each adapted module's update is B @ A * scale; its norm, relative to the frozen W."""
    from peft.tuners.lora import LoraLayer

    sums: dict[str, list[float]] = {}
    for name, m in model.named_modules():
        if isinstance(m, LoraLayer) and "default" in m.lora_A:
            a, b = m.lora_A["default"].weight, m.lora_B["default"].weight  # (r, in), (out, r)
            delta = (b.float() @ a.float()) * m.scaling["default"]
            s = sums.setdefault(_group(name.removeprefix("base_model.model.")), [0, 0.0, 0.0, ""])
            s[0] += a.numel() + b.numel()
            s[1] += delta.pow(2).sum().item()
            s[2] += m.get_base_layer().weight.float().pow(2).sum().item()
            s[3] = f"A {tuple(a.shape)}, B {tuple(b.shape)}"
    return _rows(sums)


def _rows(sums: dict) -> list[list]:
    rows = []
    for group, (n, d2, w2, *shape) in sums.items():
        rows.append([group, (shape[0] if shape else ""), f"{int(n):,}", f"{math.sqrt(d2):.4g}",
                     f"{math.sqrt(d2) / max(math.sqrt(w2), 1e-12):.2%}"])
    return sorted(rows, key=lambda r: -float(r[4].rstrip("%")))


def md_table(columns: list[str], rows: list[list]) -> str:
    return Table(columns, rows).markdown()


# ---- saving and finding saved models --------------------------------------------------------

def models_dir(home: Path) -> Path:
    return Path(home) / "models"


def save_atomic(folder: Path, write: Callable[[Path], None], manifest: dict) -> None:
    """Write into a temporary folder beside `folder`, then rename it into place: a crash or a full
    disk at any moment leaves no `folder` (or the previous one), never a half-written one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    # the pid in the name: a start-up finds what a killed process left (remove_leftovers)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".tmp-{folder.name}-{os.getpid()}-"))
    try:
        write(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))  # last: marks it complete
        os.rename(tmp, folder)  # atomic on one filesystem; refuses to replace a non-empty folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def spec_from_folder(folder: Path) -> ModelSpec:
    """A ModelSpec for a saved model folder (its manifest says whose it is and what it is)."""
    from tutor import hub

    m = json.loads((folder / MANIFEST).read_text())
    spec = hub.spec(m["id"], path=folder, label=m["label"], architecture=m["architecture"], task="causal-lm",
                    licence=m.get("licence", ""), parameters=m.get("parameters"))
    spec.source = f"fine-tuned here from {m['base_model']} ({folder})"
    spec.owner = None if m.get("shared") else m.get("owner")
    return spec


def saved_models(home: Path) -> list[Path]:
    """Complete saved model folders (a folder without its manifest is not one)."""
    root = models_dir(home)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file())


def remove_leftovers(home: Path) -> list[Path]:
    """Remove the `.tmp-*` folders and files that a process killed mid-save left in the models
    and jobs folders: those of a process that is gone (the pid in the name), or an hour old."""
    gone = []
    for root in (models_dir(home), Path(home) / "jobs"):
        for stale in root.glob("**/.tmp-*") if root.is_dir() else ():
            pid = re.search(r"-(\d+)(?:-[A-Za-z0-9_]+)?$", stale.name)
            if (pid and not _alive(int(pid.group(1)))) or time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
                gone.append(stale)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_model_id(learner: str, taken: Callable[[str], bool]) -> str:
    """ft-<learner>-<n>, the first n not used yet (in the registry or on disk)."""
    who = re.sub(r"[^a-z0-9]", "", learner.lower())[:8] or "anon"
    n = 1
    while taken(f"ft-{who}-{n}"):
        n += 1
    return f"ft-{who}-{n}"


# ---- the job --------------------------------------------------------------------------------

@dataclass
class Request:
    """Everything the learner asked for, checked before the job starts."""

    learner: str
    base: str | None
    file: str
    text: str
    method: str  # lora | full
    from_scratch: bool
    plan: Plan
    notes: list[str] = field(default_factory=list)
    checkpoint_every: int = 10  # optimizer steps between checkpoints


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def loss_figure(train: list[float], val: list[tuple[int, float]], steps: int):
    """Training loss per step and held-out loss at each evaluation (matplotlib, no pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    if train:
        ax.plot(range(1, len(train) + 1), train, label="training loss", color="#2563eb")
    if val:
        ax.plot([s for s, _ in val], [v for _, v in val], "o-", label="held-out loss", color="#dc2626")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)", xlim=(0, max(steps, 1)))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _load(ctx, req: Request):
    """(model to train, tokenizer, base id, label, licence): always a private copy."""
    import torch

    torch.manual_seed(req.plan.seed)
    if req.from_scratch and req.base is None:
        from transformers import GPT2Config, GPT2LMHeadModel

        from tutor.assets import GPT2_TIKTOKEN, package_file
        from tutor.tokenizers import gpt2_transformers_tokenizer

        config = GPT2Config(n_layer=4, n_head=4, n_embd=256, n_positions=max(256, req.plan.block_size))
        tok = gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, ctx.settings.assets)))
        return (GPT2LMHeadModel(config), tok, SCRATCH_SMALL,
                "small GPT-2 config (4 layers, 256 wide, GPT-2 tokenizer), trained from random init", "")
    with ctx.model(req.base) as lm:  # holds the shared model's lock only while we copy it
        if req.from_scratch:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_config(copy.deepcopy(lm.model.config))
            label = f"{lm.spec.label.split(' (')[0]} architecture, trained from random init"
        else:
            model = copy.deepcopy(lm.model)
            label = lm.spec.label
        return model.float(), lm.tokenizer, lm.spec.id, label, lm.spec.licence


@dataclass
class Setup:
    """The model made ready to train and the data cut for it (the same again on resume)."""

    model: Any
    tok: Any
    base_id: str
    base_label: str
    licence: str
    device: str
    train_blocks: Any
    val_blocks: Any
    total_params: int
    trainable: int
    before: dict  # full fine-tuning: the weights before, for the update norms
    prompts: list[str]


@dataclass
class Measured:
    """What the training loop has measured so far; saved in every checkpoint."""

    val_before: float
    gen_before: list[str]
    train_losses: list[float] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    last: StepInfo | None = None


def _prepare(ctx, req: Request) -> Setup:
    """Load a private copy of the model, cut the text into blocks, add LoRA adapters if asked."""
    from tutor.models import pick_device

    plan = req.plan
    model, tok, base_id, base_label, licence = _load(ctx, req)
    device = pick_device(ctx.settings.device)
    model.to(device)
    limit = context_limit(model.config)
    if limit and plan.block_size > limit:
        raise ToolError(f"--block-size {plan.block_size} is longer than this model's context ({limit} tokens).")
    ids = tok(req.text, add_special_tokens=False).input_ids
    train_blocks, val_blocks = make_blocks(ids, plan.block_size)
    val_blocks = val_blocks[:EVAL_BLOCKS]
    if plan.batch_size > len(train_blocks):
        req.notes.append(f"batch size lowered from {plan.batch_size} to {len(train_blocks)}: the text has only "
                         f"{len(train_blocks)} training blocks of {plan.block_size} tokens")
        plan.batch_size = len(train_blocks)
    total_params = sum(p.numel() for p in model.parameters())
    if req.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                                                 task_type="CAUSAL_LM",  # GPT-2 stores Linear as Conv1D (in, out):
                                                 fan_in_fan_out=model.config.model_type == "gpt2"))
        before = {}
    else:
        before = {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    prompts = [tok.decode(val_blocks[0][:8].tolist()), FIXED_PROMPT]
    return Setup(model, tok, base_id, base_label, licence, device, train_blocks, val_blocks, total_params,
                 trainable, before, prompts)


# ---- checkpoints: a crash loses at most CHECKPOINT_EVERY steps ----------------------------------

def job_dir(home: Path, job_id: str) -> Path:
    """Where a job keeps its copy of the text and its checkpoint (removed when it finishes)."""
    return Path(home) / "jobs" / job_id


def save_checkpoint(path: Path, setup: Setup, progress: Measured, info: StepInfo) -> None:
    """The trainable weights, optimizer, scheduler, RNG and measures so far, as one file written
    beside `path` and renamed over it: a kill at any moment leaves the previous checkpoint whole."""
    import torch

    state = {"step": info.step, "tokens": info.tokens, "seconds": info.seconds, **info.state(),
             "weights": {n: p.detach().cpu() for n, p in setup.model.named_parameters() if p.requires_grad},
             "rng": torch.get_rng_state(), "progress": {k: v for k, v in asdict(progress).items() if k != "last"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, setup: Setup) -> tuple[dict, Measured]:
    """Put a checkpoint's weights into the freshly prepared model: (the loop's resume state, progress)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = setup.model.load_state_dict(state.pop("weights"), strict=False)
    if unexpected:
        raise ToolError(f"The checkpoint {path} does not fit this model ({len(unexpected)} unknown weights); "
                        "start a new /finetune instead.")
    torch.set_rng_state(state.pop("rng"))
    saved = state.pop("progress")
    progress = Measured(**{**saved, "val_curve": [tuple(v) for v in saved["val_curve"]]})
    return state, progress


def _measure_before(setup: Setup, plan: Plan) -> tuple[Measured, float]:
    """The held-out loss and generations before training, and an estimate of the training time
    from the held-out pass just timed: a step reads batch x accum blocks forward and backward
    (about 3 forwards each), and 5 more held-out passes follow."""
    t_val = time.time()
    val_before = held_out_loss(setup.model, setup.val_blocks, setup.device)
    t_val = time.time() - t_val
    gen_before = generate(setup.model, setup.tok, setup.prompts, setup.device)
    per_block = t_val / max(1, len(setup.val_blocks))
    estimate = plan.steps * 3 * per_block * plan.batch_size * plan.grad_accum + 5 * t_val
    return Measured(val_before, gen_before, val_curve=[(0, val_before)]), estimate


def _train(ctx, job, req: Request, setup: Setup, progress: Measured, resume: dict | None,
           stop: Callable[[], bool], say: Callable[..., Reply], t0: float) -> Iterator[Reply]:
    """The loop with its live loss curve; a checkpoint every `checkpoint_every` steps."""
    s, plan = ctx.settings, req.plan
    every, ckpt = max(1, plan.steps // 5), job_dir(s.home, job.id) / "checkpoint.pt"
    last_shown, budget = 0.0, s.finetune_max_minutes * 60

    def halt() -> bool:
        if stop():
            progress.stopped = "cancelled"
        elif time.time() - t0 > budget:
            progress.stopped = f"time limit ({s.finetune_max_minutes:g} min, TUTOR_FINETUNE_MAX_MINUTES)"
        return progress.stopped is not None

    for info in fit(setup.model, setup.train_blocks, plan, setup.device, halt, resume):
        progress.last = info
        progress.train_losses.append(info.loss)
        if info.step % every == 0 or info.step == plan.steps:
            progress.val_curve.append((info.step, held_out_loss(setup.model, setup.val_blocks, setup.device)))
        if info.step % req.checkpoint_every == 0 and info.step < plan.steps:
            save_checkpoint(ckpt, setup, progress, info)
            job.progressed(info.step, str(ckpt))
        now = time.time()
        if now - last_shown > 1.5 or info.step == plan.steps:  # a figure per step would slow training
            last_shown = now
            job.progressed(info.step)
            yield _step_reply(info, progress, plan, now - t0, say)


def _step_reply(info: StepInfo, progress: Measured, plan: Plan, elapsed: float, say) -> Reply:
    rate = info.seconds / info.step
    left = rate * (plan.steps - info.step)
    val_step, val = progress.val_curve[-1]
    text = (f"step {info.step}/{plan.steps} · elapsed {_clock(elapsed)} · about {_clock(left)} left · "
            f"training loss {info.loss:.3f} · held-out {val:.3f} (step {val_step}) · "
            f"{info.tokens / info.seconds:,.0f} tokens/s")
    reply = say(text, info.step / plan.steps)
    reply.figure = loss_figure(progress.train_losses, progress.val_curve, plan.steps)
    reply.data.update(step=info.step, steps=plan.steps, train_losses=list(progress.train_losses),
                      val_losses=list(progress.val_curve), elapsed_s=elapsed, remaining_s=left,
                      tokens_per_s=info.tokens / info.seconds)
    reply.buttons = ["/finetune cancel"]
    return reply


def run_job(ctx, job, req: Request, stop: Callable[[], bool]) -> Iterator[Reply]:
    """The background work: yields progress replies, then the final one. A job with a
    checkpoint (resumed after a crash) starts from it instead of from step 0."""
    t0 = time.time()
    say = lambda text, p=0.0: Reply(text=f"**/finetune** ({job.id}): {text}", done=False, progress=p,
                                    data={"job": job.id, "phase": text})
    yield say("loading the model…")
    setup = _prepare(ctx, req)
    resume = None
    if job.checkpoint and Path(job.checkpoint).is_file():
        resume, progress = load_checkpoint(Path(job.checkpoint), setup)
        yield say(f"resuming from the checkpoint at step {resume['step']}…", resume["step"] / req.plan.steps)
    else:
        yield say("measuring held-out loss and generating before training…", 0.0)
        progress, estimate = _measure_before(setup, req.plan)
        yield say(f"estimated training time: about {_clock(estimate)} for {req.plan.steps} steps (from the "
                  "held-out pass just timed; the live figure corrects it)", 0.0)
    yield from _train(ctx, job, req, setup, progress, resume, stop, say, t0)
    done_steps = len(progress.train_losses)
    yield say(f"{'stopped (' + progress.stopped + ')' if progress.stopped else 'trained'}; measuring after "
              "and saving…", done_steps / req.plan.steps)
    reply = _save_result(ctx, job, req, setup, progress)
    shutil.rmtree(job_dir(ctx.settings.home, job.id), ignore_errors=True)  # the checkpoint is spent
    yield reply


def _save_result(ctx, job, req: Request, setup: Setup, progress: Measured) -> Reply:
    """Measure after, see what changed, save the model atomically and register it."""
    s, model, p = ctx.settings, setup.model, progress
    done_steps = len(p.train_losses)
    val_after = held_out_loss(model, setup.val_blocks, setup.device) if done_steps else p.val_before
    if not p.val_curve or p.val_curve[-1][0] != done_steps:
        p.val_curve.append((done_steps, val_after))
    gen_after = generate(model, setup.tok, setup.prompts, setup.device)
    if req.method == "lora":
        changes = lora_updates(model)
        model = model.merge_and_unload()  # a plain model again: /generate and /inspect need no peft
    else:
        changes = update_norms(setup.before, model)
    info = p.last
    model_id = new_model_id(req.learner, lambda i: ctx.tutor.registry.lookup("models", i) is not None
                            or (models_dir(s.home) / i).exists())
    data = {"model_id": model_id, "method": "full" if req.method == "full" else "lora", "steps": done_steps,
            "train_losses": p.train_losses, "val_loss_before": p.val_before, "val_loss_after": val_after,
            "perplexity_before": math.exp(p.val_before), "perplexity_after": math.exp(val_after),
            "val_losses": p.val_curve, "base_model": setup.base_id, "from_scratch": req.from_scratch,
            "stopped": p.stopped, "job": job.id, "trainable_parameters": setup.trainable,
            "parameters": setup.total_params, "tokens_per_s": info.tokens / info.seconds if info else 0.0,
            "device": setup.device, "hyperparameters": asdict(req.plan), "notes": req.notes,
            "generations": [{"prompt": q, "before": b, "after": a}
                            for q, b, a in zip(setup.prompts, p.gen_before, gen_after)]}
    label = (f"{setup.base_label.split(' (')[0]} fine-tuned on {Path(req.file).name} ({req.method}, {done_steps} steps)"
             if not req.from_scratch else f"{setup.base_label}: {done_steps} steps on {Path(req.file).name}")
    manifest = {"id": model_id, "label": label, "architecture": model.config.model_type, "owner": req.learner,
                "shared": False, "base_model": setup.base_id, "method": req.method, "licence": setup.licence,
                "parameters": setup.total_params, "created": time.time(), "file": Path(req.file).name,
                "results": data, "settings": s.public()}
    folder = models_dir(s.home) / model_id
    _save_model(folder, model, setup.tok, manifest)
    ctx.tutor.registry.add_model(spec_from_folder(folder), plugin="finetune")
    return final_reply(data, changes, label, setup.trainable, setup.total_params)


def _save_model(folder: Path, model, tok, manifest: dict) -> None:
    def write(tmp: Path) -> None:
        model.to("cpu").save_pretrained(tmp)
        tok.save_pretrained(tmp)

    try:
        save_atomic(folder, write, manifest)
    except Exception as e:
        if disk_full(e):
            raise ToolError(f"The disk is full: the fine-tuned model could not be saved under {folder.parent}. "
                            "Nothing was half-written and your earlier models are untouched; free some space "
                            "(or delete old models there) and run /finetune again.") from None
        if not isinstance(e, OSError):
            raise
        raise ToolError(f"Could not save the fine-tuned model under {folder.parent}: {e}. Nothing was "
                        "half-written; your earlier models are untouched.") from None


def disk_full(e: BaseException) -> bool:
    """A full disk, however the writer reports it: OSError ENOSPC, or safetensors' SafetensorError
    (which carries only the OS message, "No space left on device (os error 28)")."""
    return getattr(e, "errno", None) == errno.ENOSPC or "os error 28" in str(e) or "No space left" in str(e)


def final_reply(data: dict, changes: list[list], label: str, trainable: int, total: int) -> Reply:
    d, mid = data, data["model_id"]
    head = ("Stopped early: " + d["stopped"] + ". The model as trained so far was saved.\n\n") if d["stopped"] else ""
    what = ("LoRA: low-rank matrices A and B added beside the attention projections; only they trained, "
            "the original weights stayed frozen. Update = B @ A × scale."
            if d["method"] == "lora" else "Full fine-tuning: every weight trained. Update = W_after − W_before.")
    lines = [head + f"**Saved as `{mid}`** — {label}. Use it now, e.g. `/generate {mid} {FIXED_PROMPT}`.",
             f"Held-out perplexity **{d['perplexity_before']:.2f} → {d['perplexity_after']:.2f}** "
             f"(loss {d['val_loss_before']:.3f} → {d['val_loss_after']:.3f} nats/token) after {d['steps']} steps; "
             f"training loss {d['train_losses'][0]:.3f} → {d['train_losses'][-1]:.3f}." if d["train_losses"] else
             "No step finished, so the weights are unchanged.",
             f"{what} Trainable parameters: {trainable:,} of {total:,} ({trainable / total:.2%}).",
             "**Which weights changed, by how much** (largest relative change first):\n\n"
             + md_table(["module", "matrices", "parameters", "‖update‖", "‖update‖ / ‖W‖"], changes[:12]),
             *[f"Note: {n}." for n in d["notes"]],
             "**Same prompts, before and after** (greedy decoding):"]
    gens = Table(["prompt", "before", "after"], [[g["prompt"], g["before"], g["after"]] for g in d["generations"]])
    fig = loss_figure(d["train_losses"], [tuple(v) for v in d["val_losses"]], max(d["steps"], 1))
    return Reply(text="\n\n".join(lines), table=gens, figure=fig, data=d, progress=1.0,
                 buttons=[f"/generate {mid} {FIXED_PROMPT}", "/jobs"])


# ---- the tool -------------------------------------------------------------------------------

def finetune(ctx,
             action: Annotated[str | None, Arg("status: follow your job; cancel: stop it (keeps a checkpoint); "
                                               "share ID: let others use your model; list: your models; "
                                               "resume JOB: continue an interrupted job from its checkpoint",
                                               choices=("status", "cancel", "share", "list", "resume"))] = None,
             model: Annotated[str | None, Arg("causal LM to start from (default smollm2-135m)",
                                              choices="models")] = None,
             job: Annotated[str | None, Arg("with resume: the job id, e.g. finetune-3 (see /jobs)")] = None,
             *,
             file: Annotated[File | None, Arg("your .txt or .md file", accept=(".txt", ".md"))] = None,
             corpus: Annotated[Literal["python-docs"] | None, Arg("a corpus shipped with the tutor, "
                                                                  "instead of a file")] = None,
             method: Annotated[Literal["lora", "full"] | None, Arg("lora: small adapters (fast); full: every weight")] = None,
             steps: Annotated[int, Arg("optimizer steps", min=1)] = 20,
             lr: Annotated[float | None, Arg("learning rate (default 1e-3 LoRA / from scratch, 5e-5 full)",
                                             min=1e-7, max=1.0)] = None,
             batch_size: Annotated[int, Arg("blocks per micro-batch", min=1, max=64)] = 4,
             grad_accum: Annotated[int, Arg("micro-batches per optimizer step", min=1, max=64)] = 1,
             block_size: Annotated[int, Arg("tokens per training block", min=8, max=2048)] = 32,
             seed: Annotated[int, Arg("random seed (batch order, initialisation)", min=0)] = 0,
             from_scratch: Annotated[bool, Arg("random initial weights: watch a model learn from nothing")] = False,
             checkpoint_every: Annotated[int, Arg("optimizer steps between checkpoints (a crash loses at most "
                                                  "these)", min=1)] = 10,
             ) -> Iterator[Reply]:
    """Fine-tune a model on your own text file and watch the loss fall.

    Starts from smollm2-135m (real pretrained weights) with LoRA by default (20 steps of 4 blocks
    of 32 tokens: about 2 minutes on a 2-core CPU); `--method full` trains every weight;
    `--from-scratch` starts from random weights (a small GPT-2, or the named model's
    architecture). Shows a live loss curve, then perplexity and generations before and after, which
    weights changed, and saves the result as a new model you can use at once with /generate.
    The job keeps running if you reload the page: `/finetune status` follows it again.
    """
    jobs, who = ctx.tutor.jobs, ctx.session.learner_id
    mine = jobs.of(who, "finetune")
    if action is not None:
        yield from _action(ctx, action, model or job, mine)
        return
    if not file and not corpus:
        raise ToolError("Give a text file to learn from: `/finetune --file notes.txt` (a .txt or .md, a few "
                        "pages or more), or a shipped one: `/finetune --corpus python-docs`. Or "
                        "`/finetune status` to follow your running job.")
    if file and corpus:
        raise ToolError("Give either --file or --corpus, not both.")
    s = ctx.settings
    if steps > s.finetune_max_steps:
        raise ToolError(f"--steps {steps} is more than this tutor allows ({s.finetune_max_steps}, "
                        "TUTOR_FINETUNE_MAX_STEPS). Choose fewer steps.")
    if from_scratch and method == "lora":
        raise ToolError("LoRA adapts a pretrained model; a model from scratch has nothing to adapt. "
                        "Drop --method lora (from scratch always trains every weight).")
    base, from_scratch = _base_model(ctx, model, from_scratch)
    active = [j for j in mine if j.active]
    if active:
        raise ToolError(f"Your job {active[0].id} is still running (one fine-tune per learner at a time). "
                        "Follow it with `/finetune status` or stop it with `/finetune cancel`.")
    # A shipped corpus is the tutor's own file, not the learner's: read as it is, not as an upload.
    text = CORPORA[corpus].read_text(encoding="utf-8") if corpus else ctx.read_upload(file, suffixes=(".txt", ".md"))
    file = file or corpus
    method = "full" if from_scratch else (method or "lora")
    plan = Plan(steps, lr or DEFAULT_LR["scratch" if from_scratch else method], batch_size, grad_accum,
                block_size, seed)
    req = Request(who, base, file, text, method, from_scratch, plan, checkpoint_every=checkpoint_every)
    params = {"base": base, "file": str(file), "method": method, "from_scratch": from_scratch,
              "plan": asdict(plan), "checkpoint_every": checkpoint_every}
    started = jobs.submit(who, "finetune", f"{base or SCRATCH_SMALL} on {Path(file).name}",
                          _work(ctx, req), limit=s.finetune_concurrent_jobs, params=params)
    yield from _follow(ctx, started)


def _action(ctx, action: str, word: str | None, mine: list) -> Iterator[Reply]:
    """status, cancel, share ID, list, resume JOB: everything but starting a job."""
    if action == "status":
        if not mine:
            raise ToolError("You have no fine-tune job yet. Start one: `/finetune --file notes.txt`.")
        yield from _follow(ctx, mine[-1])
    elif action == "cancel":
        running = [j for j in mine if j.active]
        if not running:
            raise ToolError("No fine-tune job of yours is running.")
        running[-1].cancel.set()
        yield Reply(text=f"Stopping {running[-1].id} after the current step; the model trained so far is saved.",
                    done=False)
        yield from _follow(ctx, running[-1])
    elif action == "share":
        yield _share(ctx, word)
    elif action == "list":
        yield _list(ctx)
    else:
        yield from _follow(ctx, _resume(ctx, word, mine))


def _base_model(ctx, model: str | None, from_scratch: bool) -> tuple[str | None, bool]:
    """The model to start from (None: the small GPT-2 from scratch), and whether from scratch."""
    base = model or (None if from_scratch else "smollm2-135m")
    if base is not None:
        spec = ctx.tutor.registry.lookup("models", base)
        if spec is None:
            raise ToolError(f"Unknown model {base!r}; see the models list in /help finetune.")
        if spec.task != "causal-lm":
            raise ToolError(f"{base} is an {spec.task} model; fine-tuning here trains next-token prediction, "
                            "so choose a causal language model such as smollm2-135m.")
        if "untrained" in spec.label.lower():
            from_scratch = True  # its weights are random anyway: say so, train every weight
    return base, from_scratch


def _work(ctx, req: Request) -> Callable:
    """The job's work: keep a copy of the text beside the checkpoint (an upload may be gone after
    a restart), then train. The Stop button of the page that started it also stops it."""
    from tutor.assets import write_atomic

    origin = ctx.cancel

    def work(job) -> Iterator[Reply]:
        folder = job_dir(ctx.settings.home, job.id)
        if not (folder / "text.txt").is_file():
            write_atomic(folder / "text.txt", req.text.encode("utf-8", "surrogatepass"))
        try:
            yield from run_job(ctx, job, req, lambda: job.cancel.is_set() or origin.is_set())
        except Exception:  # a failed job is not resumed (only a crash interrupts one): keep no copy
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return work


def _resume(ctx, job_id: str | None, mine: list):
    """Run an interrupted job of this learner again, from its last checkpoint."""
    if not job_id:
        raise ToolError("Say which job to resume: `/finetune resume finetune-3` (`/jobs` lists yours).")
    job = next((j for j in mine if j.id == job_id), None)
    if job is None:
        raise ToolError(f"You have no fine-tune job {job_id!r}; `/jobs` lists yours.")
    if job.status != "interrupted":
        raise ToolError(f"{job.id} is {job.status}; only an interrupted job can be resumed.")
    if any(j.active for j in mine):
        raise ToolError("One of your fine-tunes is still running; wait for it or `/finetune cancel` it first.")
    folder, p = job_dir(ctx.settings.home, job.id), job.params
    text_file = folder / "text.txt"
    if not text_file.is_file():
        raise ToolError(f"{job.id} kept no copy of its text, so it cannot be resumed; start a new /finetune.")
    text = text_file.read_bytes().decode("utf-8", "surrogatepass")
    req = Request(job.owner, p["base"], p["file"], text, p["method"], p["from_scratch"], Plan(**p["plan"]),
                  checkpoint_every=p.get("checkpoint_every", 10))
    return ctx.tutor.jobs.resume(job, _work(ctx, req), limit=ctx.settings.finetune_concurrent_jobs)


def _follow(ctx, job) -> Iterator[Reply]:
    """Stream a job's progress to this page. If the page goes away the job goes on; if the
    learner pressed Stop, the job is cancelled (it still saves a checkpoint)."""
    try:
        yield from job.follow(stop=ctx.cancel)
        if ctx.cancel.is_set() and job.active:
            job.cancel.set()
            yield from job.follow()
    except GeneratorExit:  # the page closed or Stop cancelled the stream
        if ctx.cancel.wait(0.5):
            job.cancel.set()
        raise


def _share(ctx, model_id: str | None) -> Reply:
    reg, who = ctx.tutor.registry, ctx.session.learner_id
    if not model_id:
        raise ToolError("Say which model to share: `/finetune share ft-...` (see `/finetune list`).")
    folder = models_dir(ctx.settings.home) / model_id
    if not (folder / MANIFEST).is_file():
        raise ToolError(f"{model_id} is not a fine-tuned model saved here; `/finetune list` shows yours.")
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("owner") != who:
        raise ToolError(f"{model_id} is not yours, so you cannot share it.")
    manifest["shared"] = True
    from tutor.assets import write_atomic

    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, default=str).encode())
    reg.add_model(spec_from_folder(folder), plugin="finetune")
    return Reply(text=f"`{model_id}` is now shared: every learner can use it.", data={"shared": model_id})


def _list(ctx) -> Reply:
    who, rows, ids = ctx.session.learner_id, [], []
    for folder in saved_models(ctx.settings.home):
        m = json.loads((folder / MANIFEST).read_text())
        if m.get("owner") == who or m.get("shared"):
            r = m.get("results", {})
            rows.append([m["id"], m["label"], "yours" + (", shared" if m.get("shared") else "")
                         if m.get("owner") == who else "shared",
                         f"{r.get('perplexity_before', float('nan')):.2f} → {r.get('perplexity_after', float('nan')):.2f}"])
            ids.append(m["id"])
    if not rows:
        return Reply(text="No fine-tuned models yet. Start one: `/finetune --file notes.txt`.", data={"models": []})
    return Reply(text=f"{len(rows)} fine-tuned model(s) you can use:", data={"models": ids},
                 table=Table(["id", "what", "whose", "held-out perplexity"], rows))


@hookimpl
def register_tools(register):
    # cancel never waits behind others; list and share answer at once; the rest follow a job
    register(finetune, example="/finetune --corpus python-docs --steps 5",  # runs as listed: no upload
             phrases=['fine-tune', 'fine tune', 'finetune', 'fine-tuning', 'fine-tuned', 'finetuned', '~train'],
             lane=lambda args: {"cancel": "control", "list": "quick", "share": "quick"}.get(args.get("action"), "long"))


@hookimpl
def register_models(register, settings):
    """Models fine-tuned earlier (saved under TUTOR_HOME/models) come back after a restart; what a
    crash left half-saved is removed first."""
    for stale in remove_leftovers(settings.home):
        log.warning("removed %s, left by a process killed while saving", stale)
    for folder in saved_models(settings.home):
        try:
            register(spec_from_folder(folder))
        except (OSError, ValueError, KeyError):  # an unreadable manifest: skip that one folder
            continue
