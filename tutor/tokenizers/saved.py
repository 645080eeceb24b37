"""Finding a tokenizer by what a user types: the learner's own saved tokenizer, a registered name
or alias (any case), a shared saved one (TUTOR_HOME/tokenizers/NAME/tokenizer.json), or, online, a
hub id. `Tutor.tokenizer` and `ctx.tokenizer` (with the learner) call `find_tokenizer`;
`save_tokenizer` writes one, `sync_saved` registers the shared ones saved earlier.

A learner's saved tokenizers are theirs: TUTOR_HOME/tokenizers/learners/KEY/NAME/ (KEY a hash of
the learner id), found only for them, so another learner saving the same name never replaces it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..commands import suggest
from ..hub_ids import is_hub_id
from ..tools import ToolError
from .adapters import HFTokenizer, Tokenizer, TokenizerSpec, from_transformers

if TYPE_CHECKING:
    from ..settings import Settings


class Tutor(Protocol):
    """What these functions use of a tutor.context.Tutor (named here so this module, which the
    Tutor imports, imports nothing back)."""

    registry: Any
    settings: Any
    cache: Any

    def registered_tokenizer(self, name: str) -> Tokenizer: ...


# ---- hub tokenizers (online) ----------------------------------------------------------------

def load_hub(name: str, settings: Settings) -> Tokenizer:
    """Any hub tokenizer id through transformers' AutoTokenizer (SentencePiece ones included)."""
    from ..assets import offline

    if not is_hub_id(name):
        raise ToolError(f"{name!r} is neither a known tokenizer nor a Hugging Face hub id (like t5-small "
                        "or org/model).")
    if offline(settings.offline):
        raise ToolError(f"{name!r} is not a tokenizer this tutor has offline, and the Hugging Face hub "
                        "cannot be reached from here (offline mode), so hub ids like t5-small do not work. "
                        "Use one of the offline tokenizers listed by /tokenizers.")
    from transformers import AutoTokenizer

    try:
        return from_transformers(name, AutoTokenizer.from_pretrained(name))
    except Exception as e:  # not on the hub, gated, or missing sentencepiece: say which
        raise ToolError(f"Could not load {name!r} from the Hugging Face hub: {type(e).__name__}: "
                        f"{str(e).splitlines()[0][:300]}") from None


# ---- tokenizers saved while the tutor runs (the toy BPE trainer) ----------------------------

SAVED_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")


def saved_dir(settings: Settings) -> Path:
    """TUTOR_HOME/tokenizers: one folder per saved tokenizer, holding tokenizer.json."""
    return Path(settings.home) / "tokenizers"


def owned_dir(settings: Settings, owner: str) -> Path:
    """TUTOR_HOME/tokenizers/learners/KEY: one learner's saved tokenizers (KEY: a hash, so any
    learner id makes a safe folder name)."""
    return saved_dir(settings) / "learners" / hashlib.sha256(owner.encode()).hexdigest()[:24]


def _saved_spec(name: str, path: Path) -> TokenizerSpec:
    meta_path = path.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}

    def load(settings: Settings) -> Tokenizer:
        from tokenizers import Tokenizer as HFTok

        return HFTokenizer(name, HFTok.from_file(str(path)))

    return TokenizerSpec(name, load, family=meta.get("family", "trained here (toy)"),
                         description=meta.get("description", "trained by the toy BPE trainer"),
                         source=str(path), counts_by_default=False, plugin="saved")


def save_tokenizer(tutor: Tutor, name: str, tokenizer: Any, description: str = "",
                   family: str = "trained here (toy)", owner: str | None = None) -> TokenizerSpec:
    """Save a `tokenizers.Tokenizer` so /tokenize NAME works at once and after a restart: for
    `owner` only, in their own folder (replacing their own of that name, never another's), or,
    without an owner, shared as TUTOR_HOME/tokenizers/NAME/tokenizer.json and registered."""
    from ..assets import write_atomic

    if not SAVED_NAME.match(name):
        raise ToolError(f"{name!r} cannot name a tokenizer: use lowercase letters, digits, '-', '_' or '.', "
                        "at most 64 characters.")
    existing = tutor.registry.lookup("tokenizers", name)
    if existing is not None and existing.plugin != "saved":
        raise ToolError(f"{name!r} is already the built-in tokenizer from {existing.plugin}; choose another name.")
    folder = (owned_dir(tutor.settings, owner) if owner else saved_dir(tutor.settings)) / name
    write_atomic(folder / "tokenizer.json", tokenizer.to_str().encode("utf-8"))
    write_atomic(folder / "meta.json", json.dumps({"description": description, "family": family}).encode())
    spec = _saved_spec(name, folder / "tokenizer.json")
    if owner:
        tutor.cache.evict(_owned_key(folder))
        return spec
    tutor.registry.tokenizers[name] = spec
    tutor.cache.evict(f"tokenizer:{name}")  # a retrained tokenizer replaces the old one
    return spec


def sync_saved(tutor: Tutor) -> list[str]:
    """Register tokenizers saved under TUTOR_HOME/tokenizers that the registry does not know yet."""
    added = []
    folder = saved_dir(tutor.settings)
    if folder.is_dir():
        for path in sorted(folder.glob("*/tokenizer.json")):
            name = path.parent.name
            if SAVED_NAME.match(name) and tutor.registry.lookup("tokenizers", name) is None:
                tutor.registry.tokenizers[name] = _saved_spec(name, path)
                added.append(name)
    return added


def owned_names(settings: Settings, owner: str) -> list[str]:
    """The names of one learner's own saved tokenizers."""
    folder = owned_dir(settings, owner)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if SAVED_NAME.match(p.name) and (p / "tokenizer.json").is_file())


class OwnedView:
    """The registry as one learner's command line sees it: their own saved tokenizers count as
    tokenizer names too (so `/count mytok ...` reads `mytok` as the tokenizer), and another
    learner's private models are not offered as choices in its error messages."""

    def __init__(self, registry: Any, settings: Settings, owner: str):
        self._registry, self._settings, self._owner = registry, settings, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def names(self, kind: str) -> list[str]:
        names = self._registry.names(kind)
        if kind == "tokenizers":
            return sorted(set(names) | set(owned_names(self._settings, self._owner)))
        if kind == "models":
            return [n for n in names if getattr(self._registry.lookup("models", n), "owner", None) in (None, self._owner)]
        return names

    def accepts(self, kind: str, word: str) -> bool:
        return self._registry.accepts(kind, word) or (
            kind == "tokenizers" and word in owned_names(self._settings, self._owner))


def _owned_key(folder: Path) -> str:
    return f"tokenizer:owned:{folder.parent.name}/{folder.name}"


def find_owned(tutor: Tutor, owner: str, name: str) -> Tokenizer | None:
    """The learner's own saved tokenizer NAME, loaded once and kept in the cache; None if none."""
    if not SAVED_NAME.match(name):
        return None
    folder = owned_dir(tutor.settings, owner) / name
    if not (folder / "tokenizer.json").is_file():
        return None
    spec = _saved_spec(name, folder / "tokenizer.json")
    return tutor.cache.get(_owned_key(folder), lambda: spec.load(tutor.settings))


def find_tokenizer(tutor: Tutor, name: str, owner: str | None = None) -> Tokenizer:
    """A tokenizer by the learner's (`owner`'s) own saved name, registered name or alias (any
    case), shared saved name, or (online) hub id; clear errors otherwise. What
    `ctx.tokenizer(name)` returns."""
    name = name.strip()
    if not name:
        raise ToolError("Name a tokenizer, e.g. gpt2. /tokenizers lists them.")
    if owner and (mine := find_owned(tutor, owner, name) or find_owned(tutor, owner, name.lower())):
        return mine
    sync_saved(tutor)
    if tutor.registry.lookup("tokenizers", name) is not None:
        return tutor.registered_tokenizer(name)
    names = tutor.registry.names("tokenizers")
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        return tutor.registered_tokenizer(lowered[name.lower()])
    from ..assets import offline

    if offline(tutor.settings.offline) or not is_hub_id(name):
        raise ToolError(f"Unknown tokenizer {name!r}.{suggest(name, names)} Available offline: "
                        f"{', '.join(names)}." + ("" if offline(tutor.settings.offline) else
                                                  " Online, a Hugging Face hub id (like t5-small) works too."))
    try:
        return tutor.cache.get(f"tokenizer:hub:{name}", lambda: load_hub(name, tutor.settings))
    except ToolError as e:  # not on the hub either: perhaps a typo of a local name
        raise ToolError(f"{e}{suggest(name, names)}") from None
