"""The decoding loop behind every tool that generates: sampling controls and a batching decoder.

Sampling uses transformers' own logits processors, in the order `model.generate` applies them
(repetition penalty, then temperature, top-k, top-p), so what a learner sees is what generate does.
Each request samples with its own `torch.Generator`, so a seed reproduces a run no matter who
else is generating at the same moment.

The Decoder is the generation backend seam (docs/architecture.md, "Seams"). One
Decoder per model runs a scheduler thread that steps all active requests together: a new
request is prefilled alone (its first token comes out of that forward pass), then its KV cache
is left-padded and stacked into the running batch; every later step is ONE batched forward
for all requests. Each step holds the model's lock shared, as a reader (inference on the
eval-mode model changes nothing on it): other readers (/lens, another model's decoder) run at
the same moment, and only a request that holds the model exclusively (one that switches its
attention or trains it) makes the streams wait, for one step. A stop or a finished request
leaves at the next step.

    stream = decoder_for(tutor, "smollm2-135m").submit(prompt_ids, 64, Sampling(), stop_ids={2})
    for step in stream.steps(cancel):   # Step(id, p, p_model, top) per new token
        ...
    stream.stop_reason                  # "eos", "max_tokens", "context" or "stopped"
"""

from __future__ import annotations

import inspect
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator

from .anatomy import context_limit
from .tools import ToolError, valid_unicode

log = logging.getLogger("tutor.generation")
TOP = 5  # alternatives kept per step


# ---- sampling controls ------------------------------------------------------------------------

@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen from the model's logits.

    greedy: always the most likely token (argmax); otherwise sample from softmax(processed logits).
    temperature/top_k/top_p only apply when sampling; repetition_penalty applies in both modes,
    as in `model.generate`.
    """

    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None

    def processors(self):
        """transformers' LogitsProcessorList for these settings (empty for plain greedy)."""
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                  TopKLogitsWarper, TopPLogitsWarper)

        out = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            out.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if not self.greedy:
            if self.temperature != 1.0:
                out.append(TemperatureLogitsWarper(self.temperature))
            if self.top_k:
                out.append(TopKLogitsWarper(self.top_k))
            if self.top_p is not None and self.top_p < 1.0:
                out.append(TopPLogitsWarper(self.top_p))
        return out

    def describe(self) -> str:
        parts = ["greedy (always the most likely token)"] if self.greedy else [
            f"sampling, temperature {self.temperature:g}"
            + (f", top-k {self.top_k}" if self.top_k else "")
            + (f", top-p {self.top_p:g}" if self.top_p is not None and self.top_p < 1 else "")
            + f", seed {self.seed}"]
        if self.repetition_penalty != 1.0:
            parts.append(f"repetition penalty {self.repetition_penalty:g}")
        return ", ".join(parts)


MIN_TEMPERATURE = 1e-3  # below this, logits / T overflow float32 for typical logit gaps
MIN_REPETITION_PENALTY = 1e-3  # the penalty divides a repeated token's positive logit: the same overflow


def sampling_from_options(greedy: bool = False, temperature: float | None = None, top_k: int | None = None,
                          top_p: float | None = None, repetition_penalty: float | None = None,
                          seed: int | None = None, default_greedy: bool = False) -> tuple[Sampling, list[str]]:
    """Check what a learner typed and turn it into Sampling, plus notes to show them.

    Without --greedy the next token is drawn from the distribution (temperature 1, nothing cut:
    the model's own probabilities) unless `default_greedy` and no sampling control was given.
    Temperature 0 is the limit "always the most likely token", i.e. greedy: we say so and run
    greedy. Everything else out of range is refused with what each control means.
    """
    notes: list[str] = []
    if temperature is not None and temperature < 0:
        raise ToolError(f"--temperature must be 0 or more, but got {temperature:g}. It divides the logits: "
                        "below 1 sharpens the distribution, above 1 flattens it, and 0 means greedy "
                        "(always the most likely token). Try --temperature 0.7.")
    if temperature is not None and 0 < temperature < MIN_TEMPERATURE:  # logits / T would overflow to inf
        raise ToolError(f"--temperature {temperature:g} is so close to 0 that dividing the logits by it "
                        f"overflows. Use 0 for greedy (always the most likely token), or at least {MIN_TEMPERATURE:g}.")
    if top_k is not None and top_k < 1:
        raise ToolError(f"--top-k must be a whole number of at least 1 (keep the K most likely tokens), "
                        f"but got {top_k}. --top-k 1 is greedy; try --top-k 50.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ToolError(f"--top-p must be above 0 and at most 1 (keep the most likely tokens until their "
                        f"probabilities add up to P), but got {top_p:g}. 1 keeps everything; try --top-p 0.9.")
    if repetition_penalty is not None and repetition_penalty <= 0:
        raise ToolError(f"--repetition-penalty must be above 0 (1 means no penalty; above 1 makes tokens "
                        f"already in the text less likely), but got {repetition_penalty:g}. Try 1.2.")
    if repetition_penalty is not None and repetition_penalty < MIN_REPETITION_PENALTY:
        raise ToolError(f"--repetition-penalty {repetition_penalty:g} is so close to 0 that dividing the logits "
                        f"by it overflows. Use at least {MIN_REPETITION_PENALTY:g} (1 means no penalty; above 1 "
                        "makes tokens already in the text less likely); try 1.2.")
    controls = any(v is not None for v in (temperature, top_k, top_p))
    if greedy and controls:
        raise ToolError("--greedy always takes the most likely token, so --temperature, --top-k and --top-p "
                        "would have no effect. Use --greedy alone, or drop it to sample.")
    if temperature == 0:
        notes.append("Temperature 0 means always taking the most likely token: that is greedy decoding, "
                     "so this ran greedy (top-k and top-p then change nothing).")
        greedy = True
    penalty = 1.0 if repetition_penalty is None else float(repetition_penalty)
    if greedy or (default_greedy and not controls and seed is None):
        return Sampling(greedy=True, repetition_penalty=penalty), notes
    return Sampling(greedy=False, temperature=1.0 if temperature is None else float(temperature), top_k=top_k,
                    top_p=top_p, repetition_penalty=penalty,
                    seed=seed if seed is not None else random.randrange(2**31)), notes


@dataclass
class Step:
    """One generated token: its id, its probability in the distribution it was drawn from (`p`),
    its probability in the model's own softmax (`p_model`), and the top alternatives [(id, p)]."""

    id: int
    p: float
    p_model: float
    top: list[tuple[int, float]]


def choose(logits, ids, sampling: Sampling, processors, generator) -> Step:
    """Pick the next token from one row of logits (1, vocab), exactly as generate does.

    `ids` (1, length) is the text so far (the repetition penalty reads it). generate computes
    the last logits in float32, applies the processors, then argmax or multinomial(softmax).
    """
    import torch

    raw = logits.float()
    scores = processors(ids, raw) if len(processors) else raw
    probs = torch.softmax(scores, dim=-1)
    if sampling.greedy:
        token = torch.argmax(scores, dim=-1)
    else:
        token = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
    tok = int(token)
    top_p, top_i = probs[0].topk(TOP)
    p_model = torch.softmax(raw, dim=-1)[0, tok] if len(processors) else probs[0, tok]
    return Step(tok, float(probs[0, tok]), float(p_model), [(int(i), float(p)) for i, p in zip(top_i, top_p)])


# ---- the batching decoder -------------------------------------------------------------------------

@dataclass
class _Done:
    reason: str


@dataclass
class _Failed:
    error: BaseException


@dataclass
class Stream:
    """One request: the decoder fills `_out` with Steps, then a _Done (or _Failed)."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: Sampling
    stop_ids: frozenset[int]
    limit_reason: str = "max_tokens"  # why max_new_tokens is what it is ("max_tokens" or "context")
    ids: list[int] = field(default_factory=list)  # prompt + generated, written by the decoder
    stop_reason: str | None = None
    submitted: float = field(default_factory=time.perf_counter)
    _out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _processors: Any = None
    _generator: Any = None

    def cancel(self) -> None:
        """Leave the batch at the next step (the Stop button, or a reader that went away)."""
        self._cancelled.set()

    def steps(self, cancel: threading.Event | None = None, poll: float = 0.05) -> Iterator[Step]:
        """Each new token as it is made. Returns at the end; a set `cancel` ends it at once."""
        while True:
            if cancel is not None and cancel.is_set():
                self.cancel()
                self.stop_reason = "stopped"
                return
            try:
                item = self._out.get(timeout=poll)
            except queue.Empty:
                continue
            if isinstance(item, _Done):
                self.stop_reason = item.reason
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item


class _Batch:
    """The running batch: rows (streams), their stacked KV cache (left-padded) and attention mask."""

    def __init__(self):
        self.rows: list[Stream] = []
        self.cache = None  # a transformers DynamicCache, batch dimension = rows
        self.mask = None  # (rows, cache length) 1 = real token, 0 = left padding


class Decoder:
    """Steps every active request of one model together, one batched forward per step."""

    def __init__(self, tutor: Any, model_id: str, max_batch: int = 16):
        self.tutor, self.model_id, self.max_batch = tutor, model_id, max_batch
        self._lock = threading.Lock()
        self._inbox: list[Stream] = []
        self._thread: threading.Thread | None = None
        self.forwards = 0  # batched forward passes run (tests and the benchmark read these)
        self.largest_batch = 0
        self.stackable: bool | None = None  # can caches be stacked? (not for sliding-window caches)

    def submit(self, prompt_ids: list[int], max_new_tokens: int, sampling: Sampling,
               stop_ids: set[int] | frozenset[int], limit_reason: str = "max_tokens") -> Stream:
        """Queue a request; its tokens arrive through `stream.steps()`."""
        stream = Stream(list(prompt_ids), max_new_tokens, sampling, frozenset(stop_ids), limit_reason,
                        ids=list(prompt_ids))
        with self._lock:
            self._inbox.append(stream)
            if self._thread is None:  # the scheduler runs only while there is work
                self._thread = threading.Thread(target=self._run, name=f"decoder-{self.model_id}", daemon=True)
                self._thread.start()
        return stream

    def _run(self) -> None:
        batch = _Batch()
        while True:
            with self._lock:
                room = self.max_batch - len(batch.rows)
                if not self.stackable:  # unknown until the first prefill; if not, one request at a time
                    room = 0 if batch.rows else 1
                new, self._inbox = self._inbox[:room], self._inbox[room:]
                if not new and not batch.rows:
                    self._thread = None  # submit() starts a fresh thread for the next request
                    return
            try:
                with self.tutor.model(self.model_id, shared=True) as lm:  # held, as a reader, for one step
                    if new:  # (one at a time until the first prefill shows the cache can stack)
                        self._prefill(lm, batch, new)
                    self._drop_finished(batch)
                    if batch.rows:
                        self._decode_step(lm, batch)
                        self._drop_finished(batch)
            except BaseException as e:  # every waiting reader gets the error; the decoder carries on
                log.exception("decoder for %s failed", self.model_id)
                for stream in batch.rows + new:
                    stream._out.put(_Failed(e))
                batch = _Batch()

    # -- requests join: one prefill for all that arrived together, left-padded to the longest --
    def _prefill(self, lm: Any, batch: _Batch, streams: list[Stream]) -> None:
        import torch

        live = []
        for stream in streams:
            if stream._cancelled.is_set():
                stream._out.put(_Done("stopped"))
            else:
                live.append(stream)
        if not live:
            return
        longest = max(len(s.prompt_ids) for s in live)
        # left padding keeps every row's last token in the last column; masked, it changes nothing
        ids = torch.tensor([[0] * (longest - len(s.prompt_ids)) + s.prompt_ids for s in live], device=lm.device)
        mask = torch.tensor([[0] * (longest - len(s.prompt_ids)) + [1] * len(s.prompt_ids) for s in live],
                            device=lm.device)  # (R, P)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row counts from its own first token
        logits, cache = forward(lm.model, ids, mask, positions if len(live) > 1 else None)
        self.forwards += 1
        for i, stream in enumerate(live):
            self._emit(lm, stream, logits[i:i + 1])
        if self.stackable is None:
            self.stackable = _stackable(cache)
        self._join(batch, cache, mask, live)

    def _join(self, batch: _Batch, cache: Any, mask: Any, streams: list[Stream]) -> None:
        """Stack the new rows' cache under the batch's (finished rows leave at _drop_finished)."""
        import torch
        from torch.nn.functional import pad

        if not batch.rows:
            batch.rows, batch.cache, batch.mask = list(streams), cache, mask
            return
        old, new = _layers(batch.cache), _layers(cache)
        length = max(batch.mask.shape[1], mask.shape[1])

        def left(t, n):  # pad the sequence axis (-2 for K/V, -1 for the mask) on the left
            return t if n == 0 else pad(t, (0, 0, n, 0)) if t.dim() == 4 else pad(t, (n, 0))

        a, b = length - batch.mask.shape[1], length - mask.shape[1]
        batch.cache = _cache([(torch.cat([left(ko, a), left(kn, b)]), torch.cat([left(vo, a), left(vn, b)]))
                              for (ko, vo), (kn, vn) in zip(old, new)])
        batch.mask = torch.cat([left(batch.mask, a), left(mask, b)])
        batch.rows.extend(streams)

    # -- every row advances by one token in one forward pass --
    def _decode_step(self, lm: Any, batch: _Batch) -> None:
        import torch

        rows = batch.rows
        tokens = torch.tensor([[s.ids[-1]] for s in rows], device=lm.device)  # (B, 1) last token of each
        positions = torch.tensor([[len(s.ids) - 1] for s in rows], device=lm.device)  # real position, not padded
        batch.mask = torch.cat([batch.mask, torch.ones_like(tokens)], dim=1)  # (B, L+1)
        logits, batch.cache = forward(lm.model, tokens, batch.mask, positions, batch.cache)
        self.forwards += 1
        self.largest_batch = max(self.largest_batch, len(rows))
        for i, stream in enumerate(rows):
            self._emit(lm, stream, logits[i:i + 1])

    def _emit(self, lm: Any, stream: Stream, logits: Any) -> None:
        import torch

        if stream._cancelled.is_set():
            stream.stop_reason = "stopped"
            stream._out.put(_Done("stopped"))
            return
        if stream._processors is None:
            stream._processors = stream.sampling.processors()
            if not stream.sampling.greedy:  # per request: a seed reproduces the run whatever the batch
                stream._generator = torch.Generator(device=logits.device).manual_seed(stream.sampling.seed)
        ids = torch.tensor([stream.ids], device=logits.device) if len(stream._processors) else None
        step = choose(logits, ids, stream.sampling, stream._processors, stream._generator)
        stream.ids.append(step.id)
        stream._out.put(step)
        made = len(stream.ids) - len(stream.prompt_ids)
        reason = ("eos" if step.id in stream.stop_ids else
                  stream.limit_reason if made >= stream.max_new_tokens else None)
        if reason:
            stream.stop_reason = reason
            stream._out.put(_Done(reason))

    def _drop_finished(self, batch: _Batch) -> None:
        """Remove finished or cancelled rows, and the left padding no remaining row needs."""
        import torch

        for s in batch.rows:
            if s.stop_reason is None and s._cancelled.is_set():
                s.stop_reason = "stopped"
                s._out.put(_Done("stopped"))
        keep = [i for i, s in enumerate(batch.rows) if s.stop_reason is None]
        if len(keep) == len(batch.rows):
            return
        if not keep:
            batch.rows, batch.cache, batch.mask = [], None, None
            return
        mask = batch.mask[keep]
        cut = int((mask.sum(dim=0) == 0).long().cumprod(dim=0).sum())  # leading all-padding columns
        index = torch.tensor(keep, device=mask.device)
        batch.cache = _cache([(k.index_select(0, index)[:, :, cut:], v.index_select(0, index)[:, :, cut:])
                              for k, v in _layers(batch.cache)])
        batch.mask = mask[:, cut:]
        batch.rows = [batch.rows[i] for i in keep]


def forward(model: Any, ids: Any, mask: Any, positions: Any = None, cache: Any = None) -> tuple[Any, Any]:
    """One forward pass -> (last position's logits (B, vocab), the KV cache).

    transformers 5 names the cache argument `cache` (4.x: `past_key_values`); we ask the model
    which one it takes. Only the last position's logits are computed, as generate does.
    """
    import torch

    name, keep = _forward_params(type(model))
    extra = {"logits_to_keep": 1} if keep else {}
    if positions is not None:
        extra["position_ids"] = positions
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True, **{name: cache}, **extra)
    return out.logits[:, -1, :], getattr(out, name)


@lru_cache(maxsize=None)
def _forward_params(model_class: type) -> tuple[str, bool]:
    params = inspect.signature(model_class.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _stackable(cache: Any) -> bool:
    """Plain growing K/V per layer can be padded and stacked; sliding-window or recurrent cannot."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    """(keys, values) per layer, each (batch, kv heads, length, head dim)."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache(kv: list[tuple[Any, Any]]) -> Any:
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=kv)


def decoder_for(tutor: Any, model_id: str) -> Decoder:
    """The one Decoder of a model, kept in the tutor's cache beside the model itself."""
    spec = tutor.registry.lookup("models", model_id)
    key = f"decoder:{spec.id if spec else model_id}"
    return tutor.cache.get(key, lambda: Decoder(tutor, spec.id if spec else model_id))


# ---- prompts: what every generating tool checks before it runs ----------------------------------

def causal_lm(tutor: Any, name: str) -> Any:
    """The ModelSpec of a model that can generate, or a ToolError that names the ones that can."""
    spec = tutor.registry.lookup("models", name)
    generators = [s.id for s in tutor.registry.models.values() if s.task == "causal-lm"]
    if spec is None:
        raise ToolError(f"Unknown model {name!r}. Models that generate text: {', '.join(generators)}.")
    if spec.task != "causal-lm":
        raise ToolError(f"{spec.id} is {spec.label} (task: {spec.task}); it does not predict a next token. "
                        f"Models that generate text: {', '.join(generators)}.")
    return spec


def stop_ids(lm: Any) -> set[int]:
    """The model's end-of-text ids: its generation config's eos ids and the tokenizer's eos."""
    ids = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids])
    if getattr(lm.tokenizer, "eos_token_id", None) is not None:
        ids.add(lm.tokenizer.eos_token_id)
    return ids


@dataclass
class Prompt:
    ids: list[int]
    notes: list[str]
    templated: str | None = None  # the chat template's text, when --chat


def encode_prompt(lm: Any, text: str, chat: bool = False) -> Prompt:
    """The ids the model reads for `text`; chat wraps it in the model's chat template.

    An empty prompt starts from the beginning-of-text token when the model has one; a prompt
    that does not fit the context window is refused.
    """
    valid_unicode(text, "The prompt")  # a lone surrogate has no UTF-8 bytes: no tokenizer takes it
    tok, notes, templated = lm.tokenizer, [], None
    if chat:
        if not getattr(tok, "chat_template", None):
            raise ToolError(f"{lm.spec.id} has no chat template (it was not trained as a chat model). "
                            "Drop --chat to continue plain text.")
        templated = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            tokenize=False)
        ids = list(tok.encode(templated, add_special_tokens=False))
    else:
        ids = list(tok.encode(text)) if text else []
    if not ids:
        bos = getattr(tok, "bos_token_id", None)
        if bos is None:
            raise ToolError(f"The prompt is empty and {lm.spec.id} has no beginning-of-text token to start "
                            "from. Type a few words to continue, e.g. `The cat sat on the`.")
        ids = [bos]
        notes.append(f"The prompt is empty, so the model starts from its beginning-of-text token "
                     f"{tok.convert_ids_to_tokens(bos)!r} (id {bos}) alone.")
    window = context_limit(lm.model.config)
    if window is not None and len(ids) >= window:
        raise ToolError(f"The prompt is {len(ids):,} tokens, but {lm.spec.id} reads at most {window:,} "
                        f"positions, and it needs room for at least one new token. Shorten the prompt "
                        f"to under {window:,} tokens.")
    return Prompt(ids, notes, templated)
