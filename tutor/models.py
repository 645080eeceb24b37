"""The one cache of loaded models and tokenizers, shared by every learner.

Single-flight: when many learners ask for the same key at once, one thread loads and the
others wait for it (and share its result or its error). LRU: when a new entry does not fit the
memory budget of its pool (a device: "cpu", "cuda", ...), the least recently used entries of
that pool that no request is using are evicted. Each entry has a readers-writer lock: `use(key)`
holds it exclusively, which keeps whatever a request changes (train/eval mode, the attention
implementation, hooks) safe without a global lock; `use(key, shared=True)` holds it with other
readers, for pure inference on the eval-mode model (no_grad, nothing changed), so decoding steps
of many learners never wait on each other. Different models run in parallel either way.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .tools import Table, ToolError

log = logging.getLogger("tutor.models")


class CacheError(ToolError):
    """A load that cannot happen (too big for the budget); the message says why and what to do."""


@dataclass
class Entry:
    key: str
    value: Any = None
    size: int = 0  # bytes it holds (RAM or GPU memory)
    pool: str = ""  # which budget it counts against: a device type, "" for small things
    users: int = 0  # requests using it now; never evicted while > 0
    lock: "SharedLock" = field(default_factory=lambda: SharedLock())
    loaded_at: float = 0.0
    load_seconds: float = 0.0


@dataclass
class _Flight:
    """One load in progress: waiters block on `done`, then read `error` (None on success)."""

    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    reserved: int = 0  # bytes promised to this load before it finished
    pool: str = ""


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


class Cache:
    """Keyed values loaded once, kept under a memory budget per pool, evicted LRU when idle.

    `budget` is bytes for every pool, or a function pool -> bytes ("" is the pool of small
    things such as tokenizers, which are never counted).
    """

    def __init__(self, budget: int | Callable[[str], int]):
        self.budget = budget
        self._entries: OrderedDict[str, Entry] = OrderedDict()  # least recently used first
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many loads really ran (for tests and benchmarks)
        self.evictions: list[str] = []  # keys evicted to make room, oldest first

    def budget_for(self, pool: str) -> int:
        if callable(self.budget):
            return self.budget(pool) if pool else 2**62
        return self.budget

    def get(self, key: str, load: Callable[[], Any], size: Callable[[Any], int] = lambda v: 0,
            estimate: int = 0, pool: str = "", name: str = "") -> Any:
        """The value for key, loading it once. `estimate` (bytes) lets us evict before loading."""
        with self.use(key, load, size, estimate, pool, name, shared=True) as value:
            return value

    @contextmanager
    def use(self, key: str, load: Callable[[], Any], size: Callable[[Any], int] = lambda v: 0,
            estimate: int = 0, pool: str = "", name: str = "", shared: bool = False) -> Iterator[Any]:
        """Hold the entry for the duration of a request: it is not evicted and its lock is held,
        exclusively, or with other readers when `shared`.

        `name` is what error messages call the entry (default: the key)."""
        entry = self._acquire(key, load, size, estimate, pool, name or key)
        try:
            with entry.lock.hold(shared):
                yield entry.value
        finally:
            with self._lock:
                entry.users -= 1

    def _acquire(self, key: str, load: Callable[[], Any], size: Callable[[Any], int],
                 estimate: int, pool: str, name: str) -> Entry:
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    entry.users += 1
                    return entry
                flight = self._flights.get(key)
                if flight is None:  # we are the one who loads
                    flight = self._flights[key] = _Flight(pool=pool)
                    break
            flight.done.wait()
            if flight.error is not None:  # the load we waited for failed: share its error
                raise flight.error
            # else loop: the entry is there now (or was evicted already, then we load again)
        try:
            self._make_room(key, estimate, pool, flight, name)
            start = time.perf_counter()
            value = load()
            entry = Entry(key, value, size(value), pool, users=1, loaded_at=time.time(),
                          load_seconds=time.perf_counter() - start)
            if entry.size > self.budget_for(pool):  # the estimate was low; never keep it over budget
                raise CacheError(_too_big(name, entry.size, self.budget_for(pool), pool))
            with self._lock:
                self.loads += 1
                flight.reserved = 0
                self._entries[key] = entry
            self._make_room(key, 0, pool, None, name)  # the real size may exceed the estimate
            return entry
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _make_room(self, key: str, incoming: int, pool: str, flight: _Flight | None, name: str) -> None:
        """Evict idle entries of `pool`, least recently used first, until `incoming` more bytes fit.

        Bytes promised to loads still running count as used, so two loads at once cannot both
        take the same free room.
        """
        budget = self.budget_for(pool)
        if incoming > budget:
            raise CacheError(_too_big(name, incoming, budget, pool))
        with self._lock:
            used = sum(e.size for e in self._entries.values() if e.pool == pool)
            used += sum(f.reserved for f in self._flights.values() if f.pool == pool and f is not flight)
            victims = []
            for e in self._entries.values():
                if used + incoming <= budget:
                    break
                if e.pool == pool and e.users == 0 and e.key != key:
                    victims.append(e)
                    used -= e.size
            for e in victims:
                del self._entries[e.key]
                self.evictions.append(e.key)
                log.info("evicted %s (%.0f MB) to make room for %s", e.key, e.size / 2**20, key)
            if flight is not None:
                flight.reserved = incoming
            if used + incoming > budget:  # everything left is in use: go ahead, say so
                log.warning("%s: the %s budget of %s is exceeded because every other model is in use",
                            name, pool or "memory", gib(budget))
        if victims:
            _free_memory()

    def evict(self, key: str) -> bool:
        """Drop an idle entry now; False when it is absent or in use."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.users:
                return False
            del self._entries[key]
        _free_memory()
        return True

    def usage(self) -> dict[str, tuple[int, int]]:
        """pool -> (bytes held, budget) for every pool that holds something."""
        with self._lock:
            pools = {e.pool for e in self._entries.values() if e.pool}
            used = {p: sum(e.size for e in self._entries.values() if e.pool == p) for p in pools}
        return {p: (used[p], self.budget_for(p)) for p in sorted(pools)}

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def __contains__(self, key: str) -> bool:
        return key in self._entries


class SharedLock:
    """A readers-writer lock: many readers at once, or one writer.

    A waiting writer goes first (readers that arrive after it wait), so a request that changes
    the model is not starved by a steady stream of decoding steps. A thread may nest holds: a
    writer may hold it again either way, a reader may read again (even while a writer waits,
    which would otherwise deadlock); a reader asking to write is refused, since two readers
    doing so would wait on each other forever.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> how many holds it has nested
        self._writer: int | None = None
        self._writes = 0  # the writer's nested holds
        self._waiting_writers = 0

    @contextmanager
    def hold(self, shared: bool = False) -> Iterator[None]:
        (self._acquire_read if shared else self._acquire_write)()
        try:
            yield
        finally:
            self._release()

    def _acquire_read(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # a writer reading is still the writer
                self._writes += 1
                return
            if me not in self._readers:
                self._cond.wait_for(lambda: self._writer is None and not self._waiting_writers)
            self._readers[me] = self._readers.get(me, 0) + 1

    def _acquire_write(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writes += 1
                return
            if me in self._readers:
                raise RuntimeError("a thread that holds a shared lock cannot also take it exclusively")
            self._waiting_writers += 1
            try:
                self._cond.wait_for(lambda: self._writer is None and not self._readers)
            finally:
                self._waiting_writers -= 1
            self._writer, self._writes = me, 1

    def _release(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writes -= 1
                if not self._writes:
                    self._writer = None
            elif self._readers.get(me, 0) > 1:
                self._readers[me] -= 1
            else:
                del self._readers[me]
            self._cond.notify_all()

    def held(self) -> bool:
        """Whether anyone holds it now (tests read this)."""
        with self._cond:
            return self._writer is not None or bool(self._readers)


def _too_big(key: str, size: int, budget: int, pool: str) -> str:
    return (f"{key} needs about {gib(size)}, more than the whole {pool or 'memory'} budget of {gib(budget)}. "
            "Raise TUTOR_MEMORY_BUDGET_GB, load it in a smaller dtype (TUTOR_DTYPE=bfloat16), "
            "or choose a smaller model.")


def _free_memory() -> None:
    """Return freed tensors to the system (and the CUDA allocator's cache to the GPU)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


# ---- model specs and loaded models ----------------------------------------------------------

@dataclass
class Availability:
    """Whether a model can be loaded now without the network, and why not."""

    status: str  # "ready", "needs pull" (first use fetches or converts), "unavailable"
    detail: str = ""  # where it is, or why it is not
    path: Path | None = None  # its files on disk, for the size shown by `tutor models`


@dataclass
class ModelSpec:
    """A model the cache can load. `load(request)` returns (model, tokenizer) on request.device.

    `locate(settings)` says whether it is ready without loading it; `prepare(settings)` fetches,
    verifies and converts its files ahead of time (`tutor models pull`).
    """

    id: str
    label: str  # what learners see; a stand-in says so ("DistilGPT2 architecture, untrained weights")
    architecture: str  # "gpt2", "llama", "bert", ...
    task: str  # "causal-lm", "seq2seq-lm" or "encoder"
    load: Callable[["LoadRequest"], tuple[Any, Any]]
    source: str = ""  # hub, package NAME VERSION, local path, built locally
    licence: str = ""
    parameters: int | None = None
    estimate_bytes: int = 0  # float32 size, for eviction before loading
    sha256_verified: bool | None = None
    aliases: tuple[str, ...] = ()
    locate: Callable[[Any], Availability] | None = None
    prepare: Callable[[Any], Any] | None = None
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


def set_torch_threads(threads: int | None) -> None:
    """TUTOR_TORCH_THREADS: torch's CPU threads per operation; None leaves torch's choice.

    Set once, at startup: torch keeps the count per thread, and a thread takes the process-wide
    value the first time it computes, so the decoder's, the tools' and the jobs' threads all
    follow it. On a shared 2-core machine two OpenMP threads wait on each other: a fine-tune
    step took 34.6 s with torch's default 2 threads and 6.6 s with 1 (README, contributors).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)


def pick_device(setting: str = "auto") -> str:
    """CUDA, then Apple MPS, then CPU, unless the setting names one."""
    import torch

    if setting != "auto":
        if setting.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise CacheError(f"Unknown device {setting!r}; use auto, cpu, cuda (or cuda:N) or mps.")
        if setting.split(":")[0] == "cuda" and not torch.cuda.is_available():
            raise CacheError("Device 'cuda' was asked for, but this machine has no CUDA GPU that torch can use. "
                             "Use --device cpu (or TUTOR_DEVICE=auto).")
        if setting == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CacheError("Device 'mps' was asked for, but Apple's MPS is not available here. "
                             "Use --device cpu (or TUTOR_DEVICE=auto).")
        return setting
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


DTYPES = ("float32", "bfloat16", "float16")


def pick_dtype(device: str, setting: str = "auto"):
    """bfloat16 on a GPU, float32 on CPU, unless the setting names one."""
    import torch

    if setting != "auto":
        if setting not in DTYPES:
            raise CacheError(f"Unknown dtype {setting!r}; use one of auto, {', '.join(DTYPES)}.")
        return getattr(torch, setting)
    return torch.bfloat16 if device.split(":")[0] in ("cuda", "mps") else torch.float32


def model_bytes(loaded: LoadedModel) -> int:
    """Bytes held by the weights and buffers (what the memory budget counts)."""
    m = loaded.model
    return sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def folder_bytes(path: Path | None) -> int | None:
    """Size on disk of a file or a folder (symlinks followed once, as the HF cache uses them)."""
    if path is None or not path.exists():
        return None
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe(spec: ModelSpec, settings: Any, entries: list[Entry]) -> dict[str, Any]:
    """What `tutor models --json` and /models show for one model (JSON-able)."""
    try:
        avail = spec.locate(settings) if spec.locate else Availability("ready", "built locally")
    except Exception as e:  # a broken locate must not hide the other models
        avail = Availability("unavailable", f"{type(e).__name__}: {e}")
    loaded = [{"device": e.value.device, "dtype": dtype_name(e.value.dtype), "memory_bytes": e.size,
               "load_seconds": round(e.load_seconds, 2), "in_use": e.users > 0}
              for e in entries if e.key.startswith("model:") and isinstance(e.value, LoadedModel)
              and e.value.spec.id == spec.id]
    return {"id": spec.id, "label": spec.label, "architecture": spec.architecture, "task": spec.task,
            "parameters": spec.parameters, "source": spec.source, "sha256_verified": spec.sha256_verified,
            "licence": spec.licence, "size_on_disk_bytes": folder_bytes(avail.path),
            "status": "loaded" if loaded else avail.status, "detail": avail.detail,
            "why_unavailable": avail.detail if avail.status == "unavailable" else None,
            "loaded": loaded, "aliases": list(spec.aliases), "plugin": spec.plugin}


# ---- the table `tutor models` prints and /models shows -------------------------------------

def human_bytes(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def status_text(row: dict) -> str:
    """'loaded on cpu (float32, 513.1 MB)', 'ready', 'unavailable: why'."""
    if row["loaded"]:
        return "loaded on " + ", ".join(f"{m['device']} ({m['dtype']}, {human_bytes(m['memory_bytes'])})"
                                        for m in row["loaded"])
    if row["status"] == "unavailable":
        return f"unavailable: {row['why_unavailable']}"
    return row["status"]


def models_table(rows: list[dict]) -> Table:
    """The rows as the table `tutor models` prints and /models shows."""
    def params(n):
        return f"{n / 1e6:.1f}M" if n else "?"

    def verified(v):
        return {True: "yes", False: "no"}.get(v, "n/a")

    return Table(["id", "what it is", "arch", "params", "source", "sha256", "licence", "on disk", "status"],
                 [[r["id"], r["label"], r["architecture"], params(r["parameters"]), r["source"],
                   verified(r["sha256_verified"]), r["licence"], human_bytes(r["size_on_disk_bytes"]),
                   status_text(r)] for r in rows])
