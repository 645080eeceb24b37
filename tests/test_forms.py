"""Palette forms: pre-filled from each tool's example, an empty field is the tool's default."""

from __future__ import annotations

from typing import Annotated

import pytest

from tutor import Arg, Reply, Text
from tutor import commands
from tutor.forms import DEFAULT, command, example_args, fields
from tutor.tools import Tool


def _parse(tutor, line):
    return commands.parse(line, tutor.registry.tools, tutor.registry, 10**6).args


def _meaning(tool, args):
    """What a call means: every parameter's value, defaults filled in (a file is the learner's upload,
    never pre-filled)."""
    return {p.name: args.get(p.name, None if p.required else p.default) for p in tool.params if not p.file}


def test_every_example_fills_a_form_that_means_the_example(tutor):
    """The form pre-filled from a tool's example, run as it stands, is the example's command."""
    tools = tutor.registry.tools
    assert len(tools) >= 15
    for tool in tools.values():
        assert tool.example, f"/{tool.name} has no example for the palette"
        wanted = example_args(tool, tutor.registry)
        assert wanted is not None, f"/{tool.name}'s example does not parse: {tool.example}"
        form = fields(tool, tutor.registry)
        line = command(tool, [f.value for f in form])
        assert _meaning(tool, _parse(tutor, line)) == _meaning(tool, wanted), (tool.example, line)


def test_the_finetune_form_needs_no_upload(tutor, capsys):
    """Before: /finetune's example named the learner's notes.txt, so its palette form answered
    "Give a text file". Now `tutor plugins --json` and the form both train on the shipped corpus."""
    import json

    from tutor.cli import main

    assert main(["plugins", "--json"]) == 0
    listed = {t["name"]: t["example"] for t in json.loads(capsys.readouterr().out)["tools"]}
    tool = tutor.registry.tools["finetune"]
    assert listed["finetune"] == tool.example and "--corpus python-docs" in tool.example
    line = command(tool, [f.value for f in fields(tool, tutor.registry)])
    args = _parse(tutor, line)
    assert args["corpus"] == "python-docs" and not args.get("file") and args["steps"] <= 5, line


def test_an_empty_form_sends_no_zeros(tutor):
    tools = tutor.registry.tools
    for name in ("generate", "next", "attention"):
        tool = tools[name]
        empty = [DEFAULT if f.kind == "choice" else ("" if f.kind != "check" else False)
                 for f in fields(tool, tutor.registry)]
        if name == "attention":  # the model is required: pick one, leave the rest empty
            empty[0] = "smollm2-135m"
        line = command(tool, empty)
        assert " 0" not in line and "--head" not in line, line
        _parse(tutor, line)  # and it parses
    assert command(tools["generate"], {}) == "/generate"


def test_optional_choices_and_numbers_show_their_default(tutor):
    reg = tutor.registry
    head = next(f for f in fields(reg.tools["attention"], reg) if f.param.name == "head")
    assert head.kind == "text" and head.value == "" and "all heads" in head.placeholder
    model = next(f for f in fields(reg.tools["generate"], reg) if f.param.name == "model")
    assert model.kind == "choice" and model.choices[0][1] == DEFAULT and "smollm2-135m" in model.choices[0][0]
    max_tokens = next(f for f in fields(reg.tools["generate"], reg) if f.param.name == "max_tokens")
    assert max_tokens.kind == "number" and max_tokens.value == 30  # from the example
    bpe = {f.param.name: f for f in fields(reg.tools["bpe"], reg)}
    assert bpe["vocab_size"].value == "" and "at least 2" in bpe["vocab_size"].label
    # "all heads": an empty --head is left out; a head given is sent
    attn = reg.tools["attention"]
    assert "--head 3" in command(attn, {"model": "smollm2-135m", "head": 3.0, "prompt": "The cat"})
    assert "--head" not in command(attn, {"model": "smollm2-135m", "head": "", "prompt": "The cat"})


def shout(ctx, text: Text = "", *, words: list[str], loud: bool = True, times: int = 1,
          tag: Annotated[str | None, Arg("a tag; none when left out", choices=("a", "b"))] = None) -> Reply:
    """Shout."""
    return Reply(text=text)


def test_command_quotes_free_text_and_flags(tutor):
    tool = Tool.from_function(shout, example="/shout x")
    tools = {"shout": tool}

    def back(line):
        return commands.parse(line, tools, tutor.registry, 10**6).args

    assert back(command(tool, {"words": "a, b c", "text": " leading space"})) == {
        "words": ["a", "b", "c"], "text": " leading space"}
    assert back(command(tool, {"words": ["a"], "text": "--not an option"}))["text"] == "--not an option"
    assert back(command(tool, {"words": ["a"], "loud": False}))["loud"] is False  # --loud=false
    assert "--loud" not in command(tool, {"words": ["a"], "loud": True})  # the default: left out
    assert back(command(tool, {"words": ["a"], "times": 3.0})) == {"words": ["a"], "times": 3}
    assert back(command(tool, {"words": ["a"], "tag": "b", "text": "it's \"quoted\""})) == {
        "words": ["a"], "tag": "b", "text": "it's \"quoted\""}
    tag = next(f for f in fields(tool, tutor.registry) if f.param.name == "tag")
    assert tag.choices[0] == ("(default: none)", DEFAULT)


@pytest.mark.parametrize("bad", ["/shout", "/nope x"])
def test_an_example_that_no_longer_parses_leaves_the_form_empty(tutor, bad):
    tool = Tool.from_function(shout, example=bad)
    assert example_args(tool, tutor.registry) is None
    assert all(f.value in ("", None, True, 1, DEFAULT) for f in fields(tool, tutor.registry))


@pytest.mark.slow  # loads SmolLM2 and DistilGPT2's architecture
def test_every_example_runs_as_listed(tutor, tmp_path, monkeypatch):
    """The example each tool lists (the palette's, `tutor plugins --json`'s) gives a real answer,
    with no file of the learner's: /finetune's trains a few steps on the shipped python-docs corpus."""
    from tutor import chat

    monkeypatch.chdir(tmp_path)  # nothing the examples need is in the current folder
    session = tutor.session("examples")
    failed = {}
    for tool in sorted(tutor.registry.tools.values(), key=lambda t: t.name):
        reply = chat.final(tool.example, session)
        if reply.error:
            failed[tool.example] = reply.text[:300]
    assert not failed, failed
