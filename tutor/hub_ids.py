"""The one rule for a Hugging Face hub id: `name` or `owner/name`, letters, digits, `_.-`."""

from __future__ import annotations

import re

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")


def is_hub_id(word: str, namespaced: bool = False) -> bool:
    """Whether `word` could name a hub repo; `namespaced` also requires the `owner/` part (what
    a parameter that lists registered names accepts besides them, so a typo is still reported)."""
    return bool(HUB_ID.match(word)) and ".." not in word and ("/" in word or not namespaced)
