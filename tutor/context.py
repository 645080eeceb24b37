"""Tutor (one per process), Session (one per learner) and Context (one per tool call)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Iterator

from .commands import closest
from .models import Cache, LoadedModel, LoadRequest, model_bytes, pick_device, pick_dtype
from .plugins import Registry, build_registry
from .settings import Settings
from .tokenizers import Tokenizer
from .tools import ToolError


def _default_budget() -> int:
    try:
        import os
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.6)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


class Tutor:
    """The process-wide state: settings, the plugin registry and the model cache."""

    def __init__(self, settings: Settings | None = None, registry: Registry | None = None):
        self.settings = settings or Settings()
        self.registry = registry or build_registry(self.settings.plugins_dir,
                                                   _split(self.settings.plugins))
        budget = self.settings.memory_budget_gb
        self.cache = Cache(int(budget * 2**30) if budget else _default_budget())
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def session(self, learner_id: str | None = None) -> Session:
        """The learner's session, created on first use; the same id gets the same session."""
        learner_id = learner_id or uuid.uuid4().hex
        with self._lock:
            if learner_id not in self._sessions:
                self._sessions[learner_id] = Session(learner_id, self)
            return self._sessions[learner_id]

    @cached_property
    def curriculum(self):
        """The lessons (built-in and from plugins), loaded once: tutor.lessons.Curriculum."""
        from .lessons import load_curriculum
        return load_curriculum(self.registry)

    @cached_property
    def progress(self):
        """Where each learner is in the lessons (tutor.progress.ProgressStore)."""
        from .progress import open_store
        return open_store(self.settings.home)

    def tokenizer(self, name: str) -> Tokenizer:
        """A registered tokenizer by name or alias, loaded once and kept in the cache."""
        spec = self.registry.lookup("tokenizers", name)
        if spec is None:
            raise ToolError(f"Unknown tokenizer {name!r}." + _near(name, self.registry.names("tokenizers"))
                            + f" Available: {', '.join(self.registry.names('tokenizers'))}.")
        return self.cache.get(f"tokenizer:{spec.name}", lambda: spec.load(self.settings))


    @contextmanager
    def model(self, model_id: str, device: str | None = None) -> Iterator[LoadedModel]:
        """Use a model for one request: loaded once, not evicted while used, its lock held."""
        spec = self.registry.lookup("models", model_id)
        if spec is None:
            names = self.registry.names("models")
            raise ToolError(f"Unknown model {model_id!r}." + _near(model_id, names)
                            + f" Available: {', '.join(names)}.")
        device = device or pick_device(self.settings.device)
        dtype = pick_dtype(device)

        def load() -> LoadedModel:
            model, tokenizer = spec.load(LoadRequest(self.settings, device, dtype))
            return LoadedModel(spec, model.eval(), tokenizer, device, dtype)

        with self.cache.use(f"model:{spec.id}:{device}", load, model_bytes, spec.estimate_bytes) as loaded:
            yield loaded


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _near(word: str, names: list[str]) -> str:
    near = closest(word, names)
    return f" Did you mean {', '.join(near)}?" if near else ""


@dataclass
class Session:
    """One learner: an id, and per-tool state that lives as long as the process."""

    learner_id: str
    tutor: Tutor
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

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
        return self.tutor.tokenizer(name)

    def model(self, model_id: str, device: str | None = None):
        """`with ctx.model("smollm2-135m") as lm:` lm.model, lm.tokenizer, lm.device, lm.spec."""
        return self.tutor.model(model_id, device)
