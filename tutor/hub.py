"""Any transformers model by hub id or local folder: the real `from_pretrained` path.

One path serves the hub (`gpt2`, `openai-community/gpt2`), the local Hugging Face cache (used
alone when the hub is off) and a folder written by `save_pretrained`. When none of them has the
model, `ModelUnavailable` says which id, and why: the hub is off or unreachable, or it does not
know the id. The caller (Tutor.model) adds the models that are available now.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .assets import offline_reason
from .models import Availability, LoadRequest, ModelSpec, folder_bytes
from .tools import ToolError

log = logging.getLogger("tutor.hub")
# What `tutor models pull` downloads from a hub repo: weights, configs, tokenizer files.
PULL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]


class ModelUnavailable(ToolError):
    """A model that cannot be loaded here and now; the message names it and says why."""


def _expanded(text: str) -> Path:
    """`text` as a path with "~" expanded; as typed when it names a user this machine does not have
    ("~0" raises RuntimeError in pathlib), so such a name is simply no folder."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        return Path(text)


def local_folder(model_id: str) -> Path | None:
    """A folder written by save_pretrained (it has config.json), when model_id names one."""
    path = _expanded(model_id)
    return path.resolve() if (path / "config.json").is_file() else None


def cached_folder(repo: str) -> Path | None:
    """The snapshot folder of `repo` in the local Hugging Face cache, if its config is there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, "config.json")
    except Exception:  # an id the cache cannot even spell
        return None
    return Path(found).parent if isinstance(found, str) else None


def locate(repo: str, settings: Any) -> Availability:
    """ready (local folder or HF cache) / needs pull (hub reachable) / unavailable (why)."""
    folder = local_folder(repo)
    if folder is not None:
        return Availability("ready", f"local folder {folder}", folder)
    cached = cached_folder(repo)
    if cached is not None:
        return Availability("ready", "in the local Hugging Face cache", cached)
    reason = offline_reason(settings.offline)
    if reason:
        return Availability("unavailable", f"not in the local Hugging Face cache, and {reason}")
    return Availability("needs pull", "downloads from the Hugging Face hub on first use")


def infer_task(config: Any) -> str:
    """seq2seq-lm, causal-lm or encoder, from a transformers config."""
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq-lm"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in getattr(config, "architectures", None) or []):
        return "causal-lm"
    return "encoder" if config.model_type in ("bert", "roberta", "distilbert", "electra") else "causal-lm"


def auto_class(task: str):
    import transformers

    return {"causal-lm": transformers.AutoModelForCausalLM, "seq2seq-lm": transformers.AutoModelForSeq2SeqLM,
            "encoder": transformers.AutoModel}[task]


def load(repo: str, task: str, req: LoadRequest) -> tuple[Any, Any]:
    """(model, tokenizer) from the hub, the local HF cache or a folder; offline uses the cache only."""
    from transformers import AutoConfig, AutoTokenizer

    folder = local_folder(repo)
    reason = None if folder else offline_reason(req.settings.offline)
    if reason:  # offline: read the cached snapshot folder itself, so nothing can reach for the network
        folder = cached_folder(repo)  # (transformers 5 probes the hub for adapter files despite
        if folder is None:            #  local_files_only when given a repo id)
            raise ModelUnavailable(f"{repo} is not in the local Hugging Face cache, and {reason}.")
    where = str(folder or repo)
    kwargs = {"local_files_only": reason is not None}
    try:
        config = AutoConfig.from_pretrained(where, **kwargs)
    except Exception as e:  # OSError, ValueError, hub HTTP errors: all mean "cannot have it"
        raise ModelUnavailable(unavailable_message(repo, reason, e)) from e
    model = auto_class(task or infer_task(config)).from_pretrained(where, config=config, dtype=req.dtype, **kwargs)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except Exception as e:  # a weights-only folder: the model still loads; tools that need text say so
        log.warning("%s has no tokenizer (%s)", repo, e)
        tokenizer = None
    return model.to(req.device), tokenizer


def unavailable_message(repo: str, reason: str | None, error: BaseException) -> str:
    if local_folder(repo) is None and _expanded(repo).is_dir():
        return f"{repo} is a folder but not a transformers model folder (no config.json)."
    if reason:
        return f"{repo} is not in the local Hugging Face cache, and {reason}."
    name = type(error).__name__
    if "RepositoryNotFound" in name or "404" in str(error) or "is not a local folder" in str(error):
        return f"The Hugging Face hub has no model {repo!r} (or it is private or gated)."
    return f"{repo} could not be fetched from the Hugging Face hub ({name}: {str(error).splitlines()[0][:200]})."


def prepare(repo: str, settings: Any) -> Path:
    """Download a hub model's files into the local HF cache ahead of time (`tutor models pull`)."""
    folder = local_folder(repo) or cached_folder(repo)
    if folder is not None:
        return folder
    reason = offline_reason(settings.offline)
    if reason:
        raise ModelUnavailable(f"{repo} is not in the local Hugging Face cache, and {reason}.")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, allow_patterns=PULL_PATTERNS))
    except Exception as e:
        raise ModelUnavailable(unavailable_message(repo, None, e)) from e


def spec(model_id: str, *, path: Path | None = None, label: str = "", architecture: str = "", task: str = "",
         licence: str = "", parameters: int | None = None, estimate_bytes: int = 0) -> ModelSpec:
    """A ModelSpec for a hub id or a save_pretrained folder, loaded with transformers.

    `path` gives a folder a short id of its own (e.g. a fine-tuned model: spec("my-tune", path=...)).
    """
    where = str(path) if path else model_id  # what from_pretrained is given
    folder = local_folder(where)
    source = f"local folder {folder}" if folder else f"Hugging Face hub ({where})"
    if not architecture:  # read it from the config when the files are here already
        config = (folder or cached_folder(where) or Path("/nonexistent")) / "config.json"
        architecture = json.loads(config.read_text()).get("model_type", "?") if config.is_file() else "?"
    return ModelSpec(
        model_id, label or model_id, architecture, task,
        lambda req: load(where, task, req), source=source, licence=licence or "see the model card",
        parameters=parameters,
        estimate_bytes=estimate_bytes or _weights_bytes(folder or cached_folder(where)),
        sha256_verified=False,  # the hub's files are not checked by tutor
        locate=lambda settings: locate(where, settings), prepare=lambda settings: prepare(where, settings))


def hub_parameters(repo: str) -> int | None:
    """The parameter count the hub reports for a safetensors repo (one small API call), so a
    model too big for the memory budget is refused before gigabytes are downloaded."""
    try:
        from huggingface_hub import model_info

        info = model_info(repo, timeout=10)
        return info.safetensors.total if info.safetensors else None
    except Exception as e:  # unknown ids and network trouble are reported by the load itself
        log.info("no parameter count from the hub for %s: %s", repo, e)
        return None


def _weights_bytes(folder: Path | None) -> int:
    """The size of a folder's weight files: the estimate used to make room before loading."""
    if folder is None:
        return 0
    return sum(folder_bytes(p) or 0 for p in folder.glob("*.safetensors")) or \
        sum(folder_bytes(p) or 0 for p in folder.glob("*.bin"))
