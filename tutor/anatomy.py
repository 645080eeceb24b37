"""Where each transformer family keeps its parts, and safe ways to look inside a shared model.

The same role has a different module name in each family: GPT-2's fused `c_attn` is Llama's
`q_proj`/`k_proj`/`v_proj` and BERT's `query`/`key`/`value`. FAMILIES is that name map, written
out once so /inspect, /lens, /attention and /embed (and learners) read it from one place.

Models are shared by every learner (`with ctx.model(id) as lm` holds the model's lock), so the
helpers here leave a model as they found it: hooks are removed and the attention implementation
is restored in `finally`, also when the forward pass fails. Hooks record only the forward
passes of the thread that set them, so a tool holding the model shared (/lens) records its own
pass, not a decoding step another learner runs at the same moment.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .tools import ToolError, valid_unicode


@dataclass(frozen=True)
class Family:
    """One architecture family: where its parts live, relative to the base model."""

    key: str  # "gpt2", "llama", "bert"
    title: str
    model_types: tuple[str, ...]  # config.model_type values that use these names
    embed: str  # token embedding
    positions: str | None  # learned position embedding (None: rotary or none)
    blocks: str  # the ModuleList of transformer blocks
    final_norm: str | None  # norm applied before the unembedding (None: post-norm encoder)
    roles: dict[str, str] = field(default_factory=dict)  # role -> name inside one block


# role -> what learners should know it as; the order is the order data flows through a block
ROLES = ("norm before attention", "query, key, value", "attention output", "norm before MLP",
         "MLP in", "activation", "MLP out", "norm after MLP")

FAMILIES: dict[str, Family] = {f.key: f for f in [
    Family("gpt2", "GPT-2 (decoder, pre-norm LayerNorm, GELU MLP, learned positions)", ("gpt2",),
           "wte", "wpe", "h", "ln_f",
           {"norm before attention": "ln_1", "query, key, value": "attn.c_attn (one fused Conv1D)",
            "attention output": "attn.c_proj", "norm before MLP": "ln_2", "MLP in": "mlp.c_fc",
            "activation": "mlp.act (GELU)", "MLP out": "mlp.c_proj", "norm after MLP": "-"}),
    Family("llama", "Llama (decoder, pre-norm RMSNorm, SwiGLU MLP, rotary positions)", ("llama",),
           "embed_tokens", None, "layers", "norm",
           {"norm before attention": "input_layernorm (RMSNorm)",
            "query, key, value": "self_attn.q_proj, k_proj, v_proj (three Linear, no bias)",
            "attention output": "self_attn.o_proj", "norm before MLP": "post_attention_layernorm (RMSNorm)",
            "MLP in": "mlp.gate_proj and mlp.up_proj (SwiGLU: silu(gate) * up)",
            "activation": "mlp.act_fn (SiLU)", "MLP out": "mlp.down_proj", "norm after MLP": "-"}),
    Family("bert", "BERT (encoder, post-norm LayerNorm, GELU MLP, learned positions)", ("bert",),
           "embeddings.word_embeddings", "embeddings.position_embeddings", "encoder.layer", None,
           {"norm before attention": "- (post-norm: embeddings.LayerNorm before block 0)",
            "query, key, value": "attention.self.query, key, value (three Linear)",
            "attention output": "attention.output.dense, then attention.output.LayerNorm",
            "norm before MLP": "attention.output.LayerNorm (after the residual add)",
            "MLP in": "intermediate.dense", "activation": "intermediate.intermediate_act_fn (GELU)",
            "MLP out": "output.dense", "norm after MLP": "output.LayerNorm"}),
]}


def base_of(model: Any) -> tuple[Any, str]:
    """(base transformer, its dotted name inside `model`): GPT2LMHeadModel -> (transformer, "transformer")."""
    if hasattr(model, "get_base_model"):  # a PEFT wrapper around a fine-tuned model
        model = model.get_base_model()
    base = getattr(model, "base_model", model)
    for name, module in model.named_modules():
        if module is base:
            return base, name
    return model, ""


def family_of(model: Any) -> Family | None:
    """The family whose names this model uses, or None for an architecture we have no map for."""
    model_type = getattr(getattr(model, "config", None), "model_type", "")
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def full_name(model: Any, relative: str | None) -> str | None:
    """A base-relative name ("h") as the full module name ("transformer.h")."""
    if relative is None:
        return None
    _, prefix = base_of(model)
    return f"{prefix}.{relative}" if prefix else relative


def blocks_of(model: Any) -> tuple[str, list[Any]]:
    """(name, blocks) of the transformer blocks, from the family map or the longest ModuleList."""
    import torch

    fam = family_of(model)
    if fam:
        name = full_name(model, fam.blocks)
        return name, list(model.get_submodule(name))
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ToolError(f"Cannot find the transformer blocks of {type(model).__name__}.")
    name, found = max(lists, key=lambda nm: len(nm[1]))
    return name, list(found)


def module_name(model: Any, module: Any) -> str | None:
    return next((n for n, m in model.named_modules() if m is module), None)


def context_limit(config: Any) -> int | None:
    """How many tokens the model can read at once (its position table or rotary range)."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def causal_only(registry: Any, model: str, what: str) -> None:
    """Refuse a registered model that does not generate (an encoder) before it is loaded, naming
    `what` the tool would have done with it; a hub id or folder is left to the model cache."""
    spec = registry.lookup("models", model)
    if spec is not None and spec.task != "causal-lm":
        raise ToolError(f"{spec.id} is an {spec.task} model and does not generate, so it has no use for "
                        f"{what}; choose a causal language model such as smollm2-135m.")


def prompt_inputs(lm: Any, prompt: str, tool: str, max_tokens: int | None = None) -> tuple[dict, list[str]]:
    """Tokenise a prompt for lm.model: (inputs on lm.device, one display string per token).

    Raises ToolError when the prompt is empty, longer than the model's context window, or
    longer than `max_tokens` (what this tool can show or afford on a shared machine).
    """
    if not prompt.strip():
        raise ToolError(f"Give a prompt, e.g. `/{tool} {lm.spec.id} The cat sat on the mat`.")
    valid_unicode(prompt, "The prompt")  # a lone surrogate has no UTF-8 bytes: no tokenizer takes it
    inputs = lm.tokenizer(prompt, return_tensors="pt")
    n = inputs["input_ids"].shape[1]
    limit = context_limit(lm.model.config)
    if limit and n > limit:
        raise ToolError(f"The prompt is {n:,} tokens; {lm.spec.id} reads at most {limit:,} tokens "
                        "(its context window). Shorten the prompt.")
    if max_tokens and n > max_tokens:
        raise ToolError(f"The prompt is {n:,} tokens; /{tool} takes at most {max_tokens:,} tokens "
                        "so that its tables and pictures stay readable. Shorten the prompt.")
    tokens = [lm.tokenizer.decode([i]) for i in inputs["input_ids"][0].tolist()]
    return {k: v.to(lm.device) for k, v in inputs.items()}, tokens


@contextmanager
def attention_implementation(model: Any, wanted: str | None) -> Iterator[str]:
    """Run the block with `wanted` ("eager", "sdpa") as the attention implementation, then restore.

    Eager attention computes softmax(QK^T/sqrt(d)) as a tensor that output_attentions can return;
    SDPA fuses it into one kernel and returns no weights.
    """
    before = model.config._attn_implementation
    if not wanted or wanted == before:
        yield before
        return
    if not model._can_set_attn_implementation():
        raise ToolError(f"{type(model).__name__} cannot switch its attention implementation "
                        f"(it uses {before!r}).")
    model.set_attn_implementation(wanted)
    try:
        yield model.config._attn_implementation
    finally:
        model.set_attn_implementation(before)


# ---- recording forward hooks ----------------------------------------------------------------

@dataclass
class Call:
    """One module call seen by hooks: who, in which order it started, shapes in and out."""

    name: str
    kind: str  # the module's class name
    started: int  # order of the call's start (pre-hook); `calls` itself is in finishing order
    inputs: list[tuple[int, ...]]
    outputs: list[tuple[int, ...]]
    input: Any = None  # the first input tensor, only for modules named in `keep`
    output: Any = None  # the first output tensor, only for modules named in `keep`


def tensors(value: Any) -> list[Any]:
    """The tensors in a hook's args, kwargs or output (one level into tuples, lists, dicts)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


@contextmanager
def recording(model: Any, keep: tuple[str, ...] = (), cancel: Any = None,
              only: tuple[str, ...] | None = None) -> Iterator[list[Call]]:
    """Hook every module (or those named in `only`); yield the calls, filled as forward hooks fire.

    A forward hook fires when its module finishes, so the list has children before parents.

    Tensors are kept (detached) only for modules in `keep`, so recording a whole model costs
    shapes, not activations. The hooks are removed when the block ends, also on an exception.
    `cancel` (a threading.Event) stops the forward pass at the next module.
    """
    calls: list[Call] = []
    starts: dict[str, list[int]] = {}  # a module's open calls (a stack: calls may nest)
    counter = [0]
    handles = []

    owner = threading.get_ident()

    # *rest: torch reads a hook's with_kwargs flag after taking its snapshot of the hooks, so a
    # hook removed in between is called without kwargs in another thread's forward
    def pre(name: str, module: Any, args: tuple, *rest: Any) -> None:
        if threading.get_ident() != owner:
            return
        if cancel is not None and cancel.is_set():
            raise ToolError("Stopped.")
        starts.setdefault(name, []).append(counter[0])
        counter[0] += 1

    def post(name: str, module: Any, args: tuple, kwargs: dict, output: Any) -> None:
        if threading.get_ident() != owner:
            return
        given = tensors(args) + tensors(kwargs)
        out = tensors(output)
        call = Call(name, type(module).__name__, starts[name].pop(), [tuple(t.shape) for t in given],
                    [tuple(t.shape) for t in out])
        if name in keep:
            call.input = given[0].detach() if given else None
            call.output = out[0].detach() if out else None
        calls.append(call)

    try:
        for name, module in model.named_modules():
            if only is not None and name not in only:
                continue
            handles.append(module.register_forward_pre_hook(
                lambda m, a, *k, n=name: pre(n, m, a, *k), with_kwargs=True))
            handles.append(module.register_forward_hook(
                lambda m, a, *ko, n=name: post(n, m, a, *(ko if len(ko) == 2 else ({}, *ko))),
                with_kwargs=True))
        yield calls
    finally:
        for handle in handles:
            handle.remove()
