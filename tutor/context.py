"""Tutor (one per process), Session (one per learner) and Context (one per tool call)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from dataclasses import dataclass, field
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterator

from . import hub
from .commands import suggest
from .hub_ids import is_hub_id
from .files import read_upload, upload_path
from .hub import ModelUnavailable
from .jobs import Jobs
from .models import (Cache, LoadedModel, LoadRequest, ModelSpec, _free_memory, describe, dtype_name, gib, model_bytes,
                     pick_device, pick_dtype, set_torch_threads)
from .plugins import Registry, build_registry
from .reporting import working
from .settings import Settings
from .tokenizers import Tokenizer, find_tokenizer
from .tools import ToolError


log = logging.getLogger("tutor.context")


@lru_cache(maxsize=None)
def default_budget(pool: str) -> int:
    """Memory budget of one device pool: 80% of the GPU's memory for CUDA (activations and the
    allocator need the rest), 60% of RAM for CPU and for Apple MPS (which shares RAM). Asked
    lazily, so a process that never loads a model never imports torch for it."""
    import os

    if pool == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory * 0.8)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.6)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


class Tutor:
    """The process-wide state: settings, the plugin registry and the model cache."""

    def __init__(self, settings: Settings | None = None, registry: Registry | None = None):
        self.settings = settings or Settings()
        set_torch_threads(self.settings.torch_threads)  # before any thread computes (models.py)
        self.registry = registry or build_registry(self.settings.plugins_dir,
                                                   _split(self.settings.plugins), settings=self.settings)
        self.jobs = Jobs(self.settings.home)  # background work, stored so a crash keeps it (tutor/jobs.py)
        budget = self.settings.memory_budget_gb
        self.cache = Cache(int(budget * 2**30) if budget else default_budget)
        self._specs: dict[str, ModelSpec] = {}  # hub ids and folders typed by users, made once each
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def session(self, learner_id: str | None = None) -> Session:
        """The learner's session, created on first use; the same id gets the same session
        (until it has been idle for TUTOR_SESSION_IDLE_MINUTES: then a fresh one; saved
        progress, models and tokenizers are on disk and stay)."""
        learner_id = learner_id or uuid.uuid4().hex
        now = time.monotonic()
        with self._lock:
            session = self._sessions.pop(learner_id, None)  # re-inserted last: dicts keep use order
            if session is None:
                session = Session(learner_id, self)
                self._expire(now)
            session.seen = now
            self._sessions[learner_id] = session
            return session

    def _expire(self, now: float) -> None:
        """Forget idle sessions, oldest first, and the oldest past TUTOR_MAX_SESSIONS (memory stays
        bounded however many browsers come and go). Called with the lock held."""
        idle_s = self.settings.session_idle_minutes * 60
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.seen < idle_s and len(self._sessions) < self.settings.max_sessions:
                return
            del self._sessions[oldest.learner_id]

    @cached_property
    def curriculum(self):
        """The lessons (built-in and from plugins), loaded once: tutor.lessons.Curriculum."""
        from .lessons.curriculum import load_curriculum
        return load_curriculum(self.registry)

    @cached_property
    def lesson_search(self):
        """Hybrid retrieval over the curriculum's steps (tutor/lessons/search.py), built on the first
        free question; its step embeddings are cached under the assets dir. Without the MiniLM
        encoder (its package cannot be fetched) it is BM25 alone."""
        from .lessons.search import ENCODER_MODEL, LessonSearch, minilm_encoder

        try:
            return LessonSearch(self.curriculum, minilm_encoder(self), self.settings.assets / "embeddings")
        except Exception as e:  # noqa: BLE001 - any reason the encoder cannot run: say it, keep BM25
            log.warning("free questions use BM25 only: %s could not embed (%s: %s)", ENCODER_MODEL,
                        type(e).__name__, e)
            return LessonSearch(self.curriculum)

    @cached_property
    def explainer(self):
        """Who writes free questions' answers (tutor.explainer): None unless TUTOR_LLM_URL or
        TUTOR_LLM=local is set. One per process: its HTTP client is reused by every learner."""
        from .explainer import explainer_for
        return explainer_for(self.settings, self)

    @cached_property
    def progress(self):
        """Where each learner is in the lessons (tutor.lessons.progress.ProgressStore)."""
        from .lessons.progress import open_store
        return open_store(self.settings.home)

    def tokenizer(self, name: str) -> Tokenizer:
        """A tokenizer by registered name or alias (any case), saved name or (online) hub id."""
        return find_tokenizer(self, name)

    def registered_tokenizer(self, name: str) -> Tokenizer:
        """A registered tokenizer by exact name or alias, loaded once and kept in the cache."""
        spec = self.registry.lookup("tokenizers", name)
        if spec is None:
            raise ToolError(f"Unknown tokenizer {name!r}." + suggest(name, self.registry.names("tokenizers"))
                            + f" Available: {', '.join(self.registry.names('tokenizers'))}.")
        return self.cache.get(f"tokenizer:{spec.name}", lambda: spec.load(self.settings))

    def model_spec(self, model_id: str) -> ModelSpec:
        """A registered model (id or alias), or a hub id / save_pretrained folder typed by a user."""
        spec = self.registry.lookup("models", model_id)
        if spec is not None:
            return spec
        model_id = model_id.strip()
        folder = hub.local_folder(model_id)
        if folder is not None and (registered := self._registered_at(folder)) is not None:
            return registered  # a registered model named by its path is that model, owner and all
        if not (folder or is_hub_id(model_id)):
            raise ToolError(f"{model_id!r} is neither a model id nor a folder with a transformers model "
                            f"(config.json)." + suggest(model_id, self.registry.names("models"))
                            + f" Available now: {', '.join(self.available_models())}.")
        with self._lock:
            if model_id in self._specs:
                return self._specs[model_id]
        spec = hub.spec(model_id)
        if not spec.estimate_bytes and not hub.offline_reason(self.settings.offline):
            spec.parameters = hub.hub_parameters(model_id)  # before any download: the budget check
            spec.estimate_bytes = (spec.parameters or 0) * 4
        with self._lock:
            return self._specs.setdefault(model_id, spec)

    def _registered_at(self, folder) -> ModelSpec | None:
        """The registered model whose files are `folder` (resolved), if any."""
        for spec in self.registry.models.values():
            try:
                where = spec.locate(self.settings).path if spec.locate else None
            except Exception:  # a broken locate is reported by `tutor models`, not here
                continue
            if where is not None and Path(where).resolve() == folder:
                return spec
        return None

    @contextmanager
    def model(self, model_id: str, device: str | None = None, dtype: str | None = None,
              shared: bool = False) -> Iterator[LoadedModel]:
        """Use a model for one request: loaded once, not evicted while used, its lock held:
        exclusively, or with other readers when `shared` (pure inference on the eval-mode model,
        changing nothing on it: the decoder's steps, /lens).

        `device` ("cpu", "cuda", "mps") and `dtype` ("float32", "bfloat16", "float16") override
        the settings for this call; each (model, device, dtype) is its own cache entry. A GPU
        out-of-memory error while loading or using the model becomes a ToolError saying so, and
        the cache stays usable (the request's hold is released, the allocator's cache emptied).
        """
        spec = self.model_spec(model_id)
        device = pick_device(device or self.settings.device)
        torch_dtype = pick_dtype(device, dtype or self.settings.dtype)
        estimate = spec.estimate_bytes * torch_dtype.itemsize // 4  # estimates are float32 sizes

        def load() -> LoadedModel:
            with working(f"Loading {spec.id} onto {device}"):  # the page shows it (tutor/reporting.py)
                model, tokenizer = spec.load(LoadRequest(self.settings, device, torch_dtype))
            return LoadedModel(spec, model.eval(), tokenizer, device, torch_dtype)

        key = f"model:{spec.id}:{device}:{dtype_name(torch_dtype)}"
        using = False
        try:
            with self.cache.use(key, load, model_bytes, estimate, device.split(":")[0], spec.id,
                                shared=shared) as loaded:
                using = True
                yield loaded
        except ModelUnavailable as e:
            with self._lock:  # a typed id that cannot load is not listed by `tutor models`
                if self._specs.get(spec.id) is spec:
                    del self._specs[spec.id]
            raise ModelUnavailable(f"{e}{suggest(model_id, self.registry.names('models'))} "
                                   f"Available now: {', '.join(self.available_models())}.") from e
        except Exception as e:
            if not _is_oom(e):
                raise
            _free_memory()
            raise ToolError(f"The {device} ran out of memory while {'running' if using else 'loading'} "
                            f"{spec.id} ({str(e).splitlines()[0][:160]}). The tutor is still fine: try a "
                            "shorter text or fewer new tokens, a smaller model, or TUTOR_DEVICE=cpu.") from e

    def available_models(self) -> list[str]:
        """Ids that can be loaded now (loaded, ready, or fetched from the package index on first use)."""
        return [row["id"] for row in self.models_overview() if row["status"] != "unavailable"]

    def memory_line(self) -> str:
        """One line on what the loaded models hold against the budget, per device."""
        usage = self.cache.usage()
        if not usage:
            return "No model is loaded. Memory budget: TUTOR_MEMORY_BUDGET_GB, default 60% of RAM, 80% of GPU memory."
        return "Memory held: " + "; ".join(f"{pool} {gib(used)} of a {gib(budget)} budget"
                                           for pool, (used, budget) in usage.items()) + "."

    def models_overview(self) -> list[dict[str, Any]]:
        """One JSON-able row per known model (registered, then typed by users): `tutor models`, /models."""
        entries = self.cache.entries()
        specs = {**self.registry.models, **self._specs}
        return [describe(spec, self.settings, entries) for spec in specs.values()]


def _is_oom(e: BaseException) -> bool:
    """A device out-of-memory error (torch.OutOfMemoryError, or the MPS one, a RuntimeError)."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(e, oom) or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@dataclass
class Session:
    """One learner: an id, and per-tool state that lives as long as the process."""

    learner_id: str
    tutor: Tutor
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: float = 0.0  # time.monotonic() of its last use (Tutor.session)

    def context(self, cancel: threading.Event | None = None) -> Context:
        return Context(self.tutor, self, cancel or threading.Event())


@dataclass
class Context:
    """What a tool receives first: the tutor, the learner's session, a cancel flag."""

    tutor: Tutor
    session: Session
    cancel: threading.Event

    @cached_property
    def settings(self) -> Settings:
        return self.tutor.settings

    def state(self, namespace: str) -> dict[str, Any]:
        """This learner's private state for one tool (e.g. a BPE run being stepped through)."""
        return self.session.state.setdefault(namespace, {})

    def tokenizer(self, name: str) -> Tokenizer:
        """A tokenizer by this learner's own saved name, registered name or alias (any case),
        shared saved name or (online) hub id."""
        return find_tokenizer(self.tutor, name, owner=self.session.learner_id)

    def read_upload(self, path: str, suffixes: tuple[str, ...] | None = None) -> str:
        """The text of a file the learner gave (an upload), checked: tutor/files.py."""
        return read_upload(path, self.settings, suffixes)

    def upload_path(self, path: str, suffixes: tuple[str, ...], what: str) -> Path:
        """The checked path of a learner's file of any kind, e.g. `ctx.upload_path(f, (".png",), "an image")`."""
        return upload_path(path, self.settings, suffixes, what)

    def model(self, model_id: str, device: str | None = None, dtype: str | None = None, shared: bool = False):
        """`with ctx.model("smollm2-135m") as lm:` lm.model, lm.tokenizer, lm.device, lm.spec.

        The model is yours alone inside the block (hooks, train mode, attention switches are
        safe); `shared=True` runs alongside other readers and every decoding stream, for a tool
        that only runs the eval-mode model under no_grad and changes nothing on it.

        A model that belongs to another learner (spec.owner) is refused, however it is named:
        id, alias, or the path of its folder."""
        spec = self.tutor.model_spec(model_id)
        owner = getattr(spec, "owner", None)
        if owner is not None and owner != self.session.learner_id:
            raise ToolError(f"Model {model_id!r} is not yours: another learner made it and has not shared "
                            "it. Use one of your own models or a shared one (/finetune list shows yours).")
        return self.tutor.model(model_id, device, dtype, shared)
