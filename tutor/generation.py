"""The decoding loop behind every tool that generates: a batching decoder, and the prompt checks
every generating tool makes. The sampling controls it applies are in tutor/sampling.py (and
re-exported here).

The Decoder is the generation backend seam (docs/architecture.md, "Seams"). One Decoder per
model runs a scheduler thread that steps all active requests together: the requests that
arrived since the last step are prefilled together in one left-padded forward (each one's first
token comes out of it), then laid into the running batch's static KV cache (transformers'
StaticCache: preallocated, written in place, never concatenated); every later step is ONE
batched forward for all requests. Each step holds the model's lock shared, as a reader
(inference on the eval-mode model changes nothing on it): other readers (/lens, another model's
decoder) run at the same moment, and only a request that holds the model exclusively (one that
switches its attention or trains it) makes the streams wait, for one step. A stop or a finished
request leaves at the next step.

    stream = decoder_for(tutor, "smollm2-135m").submit(prompt_ids, 64, Sampling(), stop_ids={2})
    for step in stream.steps(cancel):   # Step(id, p, p_model, top) per new token
        ...
    stream.stop_reason                  # "eos", "max_tokens", "context" or "stopped"
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator

from .anatomy import context_limit
from .sampling import Sampling, Step, choose, sampling_from_options  # noqa: F401 (tools import them from here)
from .tools import ToolError, valid_unicode

log = logging.getLogger("tutor.generation")


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
    """The running batch: rows (streams), their KV cache and attention mask.

    For a model whose layers all attend to the whole past, the cache is a transformers StaticCache:
    one preallocated (rows, kv heads, capacity, head dim) buffer per layer that each step writes
    one column into, instead of concatenating (copying) the whole cache every step. Rows are
    right-aligned (left-padded), so every row writes the same column; `capacity` is the filled
    length plus the most tokens any row may still make, so a batch never outgrows its buffer
    until the rows change (a request joins or leaves; then the buffer is rebuilt once). A
    request alone keeps the model's own cache from its prefill, as transformers' generate does.
    """

    def __init__(self):
        self.rows: list[Stream] = []
        self.cache = None  # StaticCache; the model's own cache for a row alone (or always, when rows cannot stack)
        self.mask = None  # (rows, filled length) 1 = real token, 0 = left padding


class Decoder:
    """Steps every active request of one model together, one batched forward per step.

    `max_batch` caps the rows stepped together: every row adds its share to each step's time, so
    the cap bounds how slow one learner's stream can get while the others queue for a free row.
    """

    def __init__(self, tutor: Any, model_id: str, max_batch: int = 16):
        self.tutor, self.model_id, self.max_batch = tutor, model_id, max_batch
        self._lock = threading.Lock()
        self._inbox: list[Stream] = []
        self._thread: threading.Thread | None = None
        self.forwards = 0  # batched forward passes run (tests and the benchmark read these)
        self.largest_batch = 0
        self.stackable: bool | None = None  # can rows share a static cache? (not with sliding windows)
        self.batch = _Batch()  # the running batch (the scheduler thread's; tests and benchmarks look)

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
        batch = self.batch = _Batch()
        while True:
            with self._lock:
                if not self._inbox and not batch.rows:
                    self._thread = None  # submit() starts a fresh thread for the next request
                    return
            new = None
            try:
                with self.tutor.model(self.model_id, shared=True) as lm:  # held, as a reader, for one step
                    if self.stackable is None:
                        self.stackable = _stackable(lm.model.config)
                    new = self._take(len(batch.rows))  # all that came while we waited for the model
                    if new:  # prefilled together, in one forward
                        self._prefill(lm, batch, new)
                    self._drop_finished(lm, batch)
                    if batch.rows:
                        self._decode_step(lm, batch)
                        self._drop_finished(lm, batch)
            except BaseException as e:  # every waiting reader gets the error; the decoder carries on
                log.exception("decoder for %s failed", self.model_id)
                if new is None:  # the model itself failed (a load, out of memory): the queue hears it too
                    new = self._take(0, everyone=True)
                for stream in batch.rows + new:
                    stream._out.put(_Failed(e))
                batch = self.batch = _Batch()

    def _take(self, running: int, everyone: bool = False) -> list[Stream]:
        """The queued requests that fit in the batch (one at a time when caches cannot stack)."""
        room = self.max_batch - running if self.stackable else (0 if running else 1)
        with self._lock:
            room = len(self._inbox) if everyone else room
            new, self._inbox = self._inbox[:room], self._inbox[room:]
        return new

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
        if not self.stackable or (not batch.rows and len(live) == 1):
            # alone in the batch, on the model's own (dynamic) cache: a StaticCache would attend
            # over its whole padded capacity every step (a one-row step measured 62.2 against
            # 59.5 ms on SmolLM2, one CPU thread); rows are laid into one when a second joins
            batch.rows, batch.cache, batch.mask = live, cache, mask
            return
        old = ([] if not batch.rows else [(batch.rows, _layers(batch.cache, batch.mask.shape[1]), batch.mask)])
        _restack(lm.model.config, batch, old + [(live, _layers(cache, longest), mask)])

    # -- every row advances by one token in one forward pass --
    def _decode_step(self, lm: Any, batch: _Batch) -> None:
        import torch

        rows = batch.rows
        tokens = torch.tensor([[s.ids[-1]] for s in rows], device=lm.device)  # (B, 1) last token of each
        positions = torch.tensor([[len(s.ids) - 1] for s in rows], device=lm.device)  # real position, not padded
        batch.mask = torch.cat([batch.mask, torch.ones_like(tokens)], dim=1)  # (B, L+1)
        # a StaticCache writes column L in place; the library pads the mask to its capacity with zeros
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

    def _drop_finished(self, lm: Any, batch: _Batch) -> None:
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
        kv = [(k.index_select(0, index)[:, :, cut:], v.index_select(0, index)[:, :, cut:])
              for k, v in _layers(batch.cache, mask.shape[1])]
        _restack(lm.model.config, batch, [([batch.rows[i] for i in keep], kv, mask[:, cut:])])


def _restack(config: Any, batch: _Batch, parts: list[tuple[list[Stream], list[tuple[Any, Any]], Any]]) -> None:
    """Lay the rows of `parts` (streams, (keys, values) per layer, mask) into one new StaticCache,
    right-aligned at the longest part's length, with room for the most tokens any row may still make."""
    import torch
    from torch.nn.functional import pad
    from transformers import StaticCache

    rows = [s for streams, _, _ in parts for s in streams]
    length = max(mask.shape[1] for _, _, mask in parts)
    left = max(s.max_new_tokens - (len(s.ids) - len(s.prompt_ids)) for s in rows)
    cache = StaticCache(config=config, max_cache_len=length + max(left, 1))
    for i, layer in enumerate(cache.layers):
        k0, v0 = parts[0][1][i]
        layer.lazy_initialization(k0.new_empty((len(rows), k0.shape[1], 0, k0.shape[3])),
                                  v0.new_empty((len(rows), v0.shape[1], 0, v0.shape[3])))
        row = 0
        for streams, kv, _ in parts:
            k, v = kv[i]
            layer.keys[row:row + len(streams), :, length - k.shape[2]:length] = k
            layer.values[row:row + len(streams), :, length - v.shape[2]:length] = v
            row += len(streams)
        layer.cumulative_length.fill_(length)
    batch.rows, batch.cache = rows, cache
    batch.mask = torch.cat([pad(mask, (length - mask.shape[1], 0)) for _, _, mask in parts])


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


def _stackable(config: Any) -> bool:
    """Can rows share one static cache? Yes when every layer attends to the whole past (a
    StaticLayer); a sliding-window or recurrent layer keeps a rolling state that cannot be padded."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    try:
        layers = StaticCache(config=config, max_cache_len=1).layers  # lazy: allocates nothing yet
    except (ValueError, KeyError, TypeError):  # a layer type the static cache does not know
        return False
    return bool(layers) and all(type(layer) is StaticLayer for layer in layers)


def _layers(cache: Any, length: int) -> list[tuple[Any, Any]]:
    """(keys, values) per layer, each (batch, kv heads, length, head dim): the filled columns."""
    return [(layer.keys[:, :, :length], layer.values[:, :, :length]) for layer in cache.layers]


def decoder_for(tutor: Any, model_id: str) -> Decoder:
    """The one Decoder of a model, kept in the tutor's cache beside the model itself."""
    spec = tutor.registry.lookup("models", model_id)
    key = f"decoder:{spec.id if spec else model_id}"
    return tutor.cache.get(key, lambda: Decoder(tutor, spec.id if spec else model_id,
                                                tutor.settings.decoder_max_batch))


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
