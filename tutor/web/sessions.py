"""Gradio sessions that cost nothing to open: each component's config is built when first read.

Gradio (gradio/state_holder.py, `SessionState.__init__`) builds the config of every component on
the page for every new session, to keep a copy it only reads for deep links (gr.DeepLinkButton,
which the tutor does not use) and when a component is updated. A call without a Gradio session is
a new session each time: a course site's `POST /gradio_api/call/ask`, every MCP tool call, every
page load. Over this page's 191 blocks that was 22 ms of the 32 ms of server CPU such a call
took, most of it the schemas of 124 API endpoints and of the upload button, rebuilt each time.

`install()` keeps Gradio's own `__init__` and hands it a view of the Blocks with no blocks, so its
loop builds nothing; the session then gets the same configs as a mapping that builds each one on
first read. Everything Gradio reads gives what it gave before (tests/test_web_sessions.py
compares both over the whole page); only the work moves to the rare reader.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from gradio import state_holder

_ORIGINAL = state_holder.SessionState.__init__


class LazyConfigs(dict):
    """`SessionState.config_values`: block id -> config, each built by `build(id)` when first read.

    A dict, so Gradio's `config_values[key] = ...` and `config_values[key]["props"]` work as they
    did; anything that lists it (`items()`, `components` for deep links) first builds the rest.
    """

    def __init__(self, build: Callable[[int], dict], keys: Iterable[int]):
        super().__init__()
        self._build = build
        self._pending = dict.fromkeys(keys)  # a dict, not a set: it keeps the page's order
        self._lock = threading.Lock()

    def __missing__(self, key: int) -> dict:
        with self._lock:  # two events of one session may read the same config at once
            if super().__contains__(key):
                return super().__getitem__(key)
            if key not in self._pending:
                raise KeyError(key)
            value = self[key] = self._build(key)
            return value

    def __setitem__(self, key: int, value: dict) -> None:
        self._pending.pop(key, None)  # set by Gradio (a component updated): nothing left to build
        super().__setitem__(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or super().__contains__(key)

    def get(self, key: int, default: Any = None) -> Any:
        return self[key] if key in self else default

    def built(self) -> LazyConfigs:
        for key in list(self._pending):
            self[key]
        return self

    def __len__(self) -> int:
        return len(self._pending) + super().__len__()

    def __iter__(self):
        return iter(self.keys())

    def keys(self):
        self.built()
        return super().keys()

    def values(self):
        self.built()
        return super().values()

    def items(self):
        self.built()
        return super().items()

    def copy(self) -> dict:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:  # dict's own compares only what is built
        self.built()
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"LazyConfigs({len(self)} blocks, {super().__len__()} built)"


class _NoBlocks:
    """The Blocks as `SessionState.__init__` sees it: the same in all but `.blocks`, which is
    empty, so its comprehension over `blocks_config.blocks if k in blocks.blocks` builds nothing."""

    def __init__(self, blocks: Any):
        self._blocks = blocks
        self.blocks: dict = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blocks, name)


def _lazy_init(self: state_holder.SessionState, blocks: Any) -> None:
    _ORIGINAL(self, _NoBlocks(blocks))
    config = self.blocks_config
    self.config_values = LazyConfigs(lambda k: config.config_for_block(k, [], config.blocks[k]),
                                     [k for k in config.blocks if k in blocks.blocks])


def install() -> None:
    """Make every Gradio session in this process build its configs lazily (idempotent)."""
    state_holder.SessionState.__init__ = _lazy_init  # type: ignore[method-assign]


def uninstall() -> None:
    """Gradio's own behaviour back (the tests compare both)."""
    state_holder.SessionState.__init__ = _ORIGINAL  # type: ignore[method-assign]
