"""The one cache of loaded models and tokenizers, shared by every learner.

Single-flight: when many learners ask for the same key at once, one thread loads and the
others wait for it. LRU: when a new entry does not fit the memory budget, the least recently
used entries that no request is using are evicted. Use of one entry is serialised by its own
lock (`use(key)` holds it), which keeps a model's state safe without a global lock.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

log = logging.getLogger("tutor.models")


class CacheError(Exception):
    """A load that cannot happen (too big for the budget, failed); the message says why."""


@dataclass
class Entry:
    key: str
    value: Any = None
    size: int = 0  # bytes it holds (RAM or GPU memory)
    users: int = 0  # requests using it now; never evicted while > 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    loaded_at: float = 0.0
    load_seconds: float = 0.0


class Cache:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()  # least recently used first
        self._loading: dict[str, threading.Event] = {}
        self._errors: dict[str, BaseException] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many loads really ran (for tests and benchmarks)

    def get(self, key: str, load: Callable[[], Any], size: Callable[[Any], int] = lambda v: 0,
            estimate: int = 0) -> Any:
        """The value for key, loading it once. `estimate` (bytes) lets us evict before loading."""
        with self.use(key, load, size, estimate) as value:
            return value

    @contextmanager
    def use(self, key: str, load: Callable[[], Any], size: Callable[[Any], int] = lambda v: 0,
            estimate: int = 0) -> Iterator[Any]:
        """Hold the entry for the duration of a request: it is not evicted and its lock is held."""
        entry = self._acquire(key, load, size, estimate)
        try:
            with entry.lock:
                yield entry.value
        finally:
            with self._lock:
                entry.users -= 1

    def _acquire(self, key: str, load: Callable[[], Any], size: Callable[[Any], int], estimate: int) -> Entry:
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    entry.users += 1
                    return entry
                waiting = self._loading.get(key)
                if waiting is None:  # we are the one who loads
                    self._loading[key] = threading.Event()
                    break
            waiting.wait()
            with self._lock:
                if key in self._errors and key not in self._entries:
                    raise self._errors[key]
        try:
            self._make_room(estimate, key)
            start = time.perf_counter()
            value = load()
            entry = Entry(key, value, size(value), users=1, loaded_at=time.time(),
                          load_seconds=time.perf_counter() - start)
            with self._lock:
                self.loads += 1
                self._errors.pop(key, None)
                self._entries[key] = entry
            self._make_room(0, key)
            return entry
        except BaseException as e:
            with self._lock:
                self._errors[key] = e
            raise
        finally:
            with self._lock:
                self._loading.pop(key).set()

    def _make_room(self, incoming: int, keep: str) -> None:
        """Evict idle entries, least recently used first, until `incoming` more bytes fit."""
        with self._lock:
            if incoming > self.budget:
                raise CacheError(f"{keep} needs about {incoming / 2**30:.1f} GiB, more than the whole "
                                 f"memory budget of {self.budget / 2**30:.1f} GiB. Raise TUTOR_MEMORY_BUDGET_GB "
                                 "or choose a smaller model.")
            used = sum(e.size for e in self._entries.values())
            victims = []
            for e in self._entries.values():
                if used + incoming <= self.budget:
                    break
                if e.users == 0 and e.key != keep:
                    victims.append(e)
                    used -= e.size
            for e in victims:
                del self._entries[e.key]
                log.info("evicted %s (%.0f MB) to make room", e.key, e.size / 2**20)
        if victims:
            gc.collect()

    def evict(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.users:
                return False
            del self._entries[key]
        gc.collect()
        return True

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def __contains__(self, key: str) -> bool:
        return key in self._entries


# ---- model specs and loaded models ----------------------------------------------------------

@dataclass
class ModelSpec:
    """A model the cache can load. `load(request)` returns (model, tokenizer) on request.device."""

    id: str
    label: str  # what learners see; a stand-in says so ("DistilGPT2 architecture, untrained weights")
    architecture: str  # "gpt2", "llama", "bert", ...
    task: str  # "causal-lm" or "encoder"
    load: Callable[["LoadRequest"], tuple[Any, Any]]
    source: str = ""  # hub, package NAME VERSION, local path, built locally
    licence: str = ""
    parameters: int | None = None
    estimate_bytes: int = 0  # float32 size, for eviction before loading
    sha256_verified: bool | None = None
    aliases: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)
    owner: str | None = None  # a learner's own model (e.g. fine-tuned); None: everyone may use it


@dataclass(frozen=True)
class LoadRequest:
    settings: Any
    device: str
    dtype: Any  # a torch.dtype


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any  # a torch.nn.Module in eval mode
    tokenizer: Any  # a transformers tokenizer
    device: str
    dtype: Any


def pick_device(setting: str = "auto") -> str:
    """CUDA, then Apple MPS, then CPU, unless the setting names one."""
    import torch

    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str):
    import torch

    return torch.bfloat16 if device in ("cuda", "mps") else torch.float32


def model_bytes(loaded: LoadedModel) -> int:
    return sum(p.numel() * p.element_size() for p in loaded.model.parameters())
