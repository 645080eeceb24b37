"""How a message is read, and where the phrases a tool declares when it registers occur in it.

A phrase is plain words, compared by stem with everyday synonyms folded and typos forgiven:

    "split|break into tokens"   a slot may offer alternatives: "break 'x' into tokens" finds it
    "~write"                    a weak phrase: counts only when the message also gives the tool an
                                argument (intents.py decides), so "write me a poem" runs nothing
    "tokens similar to"         its content words in any order, close together, count too

    Message.read("tokenize 'hi there' with two layers").quotes -> ['hi there'] (and "two" reads as 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from .tools import Tool

QUOTED = re.compile(r"""(?:^|(?<=[\s(:,]))(?:"([^"]+)"|'([^']+)'|“([^”]+)”|‘([^’]+)’)(?=$|[\s?.!,;:)])""")
WORD = re.compile(r"[A-Za-z0-9][\w./-]*[A-Za-z0-9]|[A-Za-z0-9]")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
PAD = "\x01"  # fills the place of a number word's letters after its digits, so positions are kept
# Words a phrase may skip or a message may put in between ("ids back into text" says "ids to text").
GLUE = {"to", "into", "of", "the", "a", "an", "in", "on", "for", "my", "me", "all", "back", "up", "its", "their"}
# Everyday verbs and adjectives that mean the same to a request: both a tool's phrases and the
# message are read through this, so "break it into tokens" meets a tool that says "split into tokens".
SAME = {"break": "split", "cut": "split", "chop": "split", "divid": "split", "display": "show", "print": "show",
        "closest": "nearest", "neighbor": "neighbour", "similar": "nearest", "turn": "convert", "tokenis": "tokeniz",
        "in": "of", "for": "of", "encod": "tokeniz", "finish": "continu", "sampl": "generat",
        "which": "what", "learn": "train"}


def stem(word: str) -> str:
    """'tokenizes' -> 'tokeniz', 'merged' -> 'merg': close enough to match declared phrases."""
    word = word.lower()
    for suffix, keep in (("ization", "iz"), ("isation", "iz"), ("ation", "at")):  # generation ~ generate
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)] + keep
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def canon(word: str) -> str:
    """A word as phrases are compared: its stem, everyday synonyms folded ('breaks' -> 'split')."""
    return SAME.get(stem(word), stem(word))


@dataclass
class Message:
    text: str  # as typed
    masked: str  # lower case; quoted text and "'s" blanked out, positions kept
    quotes: list[str]
    words: list[tuple[str, int, int]]  # (word, start, end) in masked

    @classmethod
    def read(cls, text: str) -> "Message":
        quotes, masked = [], list(text.lower())
        for m in QUOTED.finditer(text):
            quotes.append(next(g for g in m.groups() if g is not None))
            masked[m.start():m.end()] = " " * (m.end() - m.start())
        flat = re.sub(r"'s\b", "  ", "".join(masked))
        flat = re.sub(r"\b(?:" + "|".join(NUMBER_WORDS) + r")\b",  # "layer two" -> "layer 2"
                      lambda m: NUMBER_WORDS[m.group()].ljust(len(m.group()), PAD), flat)
        return cls(text, flat, quotes, [(m.group(), m.start(), m.end()) for m in WORD.finditer(flat)])

    def parts(self) -> list[tuple[str, int, int]]:
        """Words split at - and _ ('top-k' -> top, k) with their spans, for phrase matching."""
        out = []
        for word, start, _ in self.words:
            for m in re.finditer(r"[a-z0-9]+", word):
                out.append((m.group(), start + m.start(), start + m.end()))
        return out


def slots(phrase: str) -> tuple[bool, list[frozenset[str]]]:
    """A declared phrase as word slots: '~write' is weak (it counts only when the message also
    gives the tool an argument: a name, a named number); 'split|break into tokens' offers
    alternatives in a slot -> [{split, break}, {into}, {token}], each word as `canon` reads it."""
    return phrase.startswith("~"), [frozenset(canon(w) for w in slot.split("|") if w)
                                    for slot in re.findall(r"[a-z0-9|]+", phrase.lower())]


def close(word: str, want: str) -> bool:
    """A word as typed is the phrase's word, or a typo of it: one letter missing, extra, wrong or
    two swapped ("tokenzie", "atention", "genrate", "mnay"); short words only by a swap."""
    if word == want:
        return True
    if word[:1] != want[:1] or word.isdigit() or OSA.distance(word, want) != 1:
        return False
    if word.startswith(want) or want.startswith(word):  # "tokenizer" is a word of its own, no typo
        return False
    return min(len(word), len(want)) >= 6 or (len(word) >= 4 and sorted(word) == sorted(want))


def _at(slot: frozenset[str], stem_: str) -> bool:
    return stem_ in slot or any(close(stem_, w) for w in slot if w not in GLUE)


def phrase_spans(tool: Tool, msg: Message) -> list[tuple[float, int, int]]:
    """(length in words, start, end) of every phrase of the tool found in the message. A phrase
    found word for word counts its length; one whose content words are all there, in any order,
    within a few words of each other ("tokens similar to", "ids back into text") counts half a
    word less, so an exact phrase of the same length wins. A question matches that loosely only
    when it quotes its text ("print(model) shows ..., which runs first?" is no request for /models).
    Weak phrases are left out here: `weak_spans` finds them."""
    return _spans(tool, msg, weak=False)


def weak_spans(tool: Tool, msg: Message) -> list[tuple[float, int, int]]:
    return _spans(tool, msg, weak=True)


def _spans(tool: Tool, msg: Message, weak: bool) -> list[tuple[float, int, int]]:
    parts = msg.parts()
    stems = [canon(p) for p, _, _ in parts]
    found: list[tuple[float, int, int]] = [] if weak else \
        [(1, s, e) for w, s, e in msg.words if w == tool.name or (len(tool.name) >= 5 and close(w, tool.name))]
    loose = "?" not in msg.text or bool(msg.quotes)
    for phrase in tool.phrases:
        is_weak, want = slots(phrase)
        if is_weak != weak or not want:
            continue
        for i in range(len(stems) - len(want) + 1):
            if all(_at(slot, st) for slot, st in zip(want, stems[i:i + len(want)])):
                found.append((len(want), parts[i][1], parts[i + len(want) - 1][2]))
        content = [slot for slot in want if not slot <= GLUE]
        if len(content) >= 2 and loose and not any(f[0] >= len(want) for f in found):
            found += _scattered(want, content, stems, parts, msg.text)
    return found


def _scattered(want: list, content: list, stems: list[str], parts: list, text: str) -> list[tuple[float, int, int]]:
    """The phrase's content words in any order within a window a little longer than the phrase,
    never across a sentence's end. A glue word of the phrase right before one of them goes with
    it ("break unhappiness into tokens": "into" is no part of the text)."""
    width = len(content) + 3
    places = [j for j, w in enumerate(stems) if not w.isdigit()]  # "ids 464 3797 back into text"
    for k, i in enumerate(places):
        window = places[k:k + width]
        if not any(_at(slot, stems[i]) for slot in content):
            continue
        hit = {j for j in window if any(_at(slot, stems[j]) for slot in content)}
        if all(any(_at(slot, stems[j]) for j in hit) for slot in content):
            last = max(hit)
            if not re.search(r"[.?!;]\s", text[parts[i][1]:parts[last][2]]):  # each word its own span:
                used = sorted(hit)                                          # what lies between is text
                glue = [j - 1 for j in used if j > 0 and j - 1 not in hit and any(
                    stems[j - 1] in g <= GLUE for g, c in zip(want, want[1:]) if _at(c, stems[j]))]
                return [(len(content) - 0.5 if j == i else 0, parts[j][1], parts[j][2]) for j in used + glue]
    return []
