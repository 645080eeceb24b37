"""The plugin manager: built-ins, plugin folders, entry points, failures, clashes, allowlist."""

import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from tutor import Reply, TokenizerSpec, hookimpl
from tutor.plugins import HOOKS, build_registry
from tutor.models import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def write_plugin(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    from tutor import Reply, Text, hookimpl

    def shout(ctx, text: Text = "") -> Reply:
        '''Repeat TEXT in capitals.'''
        return Reply(text=text.upper(), data={"shouted": text.upper()})

    @hookimpl
    def register_tools(register):
        register(shout, example="/shout hi")
"""


def test_builtins_load_through_the_same_hooks():
    reg = build_registry()
    by_name = {p.name: p for p in reg.plugins}
    assert by_name["count"].source == "built-in"
    assert "register_tools" in by_name["count"].hooks
    assert reg.tools["count"].plugin == "count"
    assert {"r50k_base", "cl100k_base", "o200k_base"} <= set(reg.tokenizers)
    assert not reg.failures, reg.failures


def test_plugins_dir_file_becomes_a_tool_in_help_and_chat(tmp_path):
    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings

    write_plugin(tmp_path / "mine", "shouter", GOOD)
    tutor = Tutor(Settings(plugins_dir=[tmp_path / "mine"]))
    session = tutor.session("t")
    assert "/shout" in chat.final("/help", session).text
    reply = chat.final("/shout hello there", session)
    assert reply.data == {"shouted": "HELLO THERE"}
    info = next(p for p in tutor.registry.plugins if p.name == "shouter")
    assert info.source == f"plugins dir {tmp_path / 'mine'}" and info.registered == {"tools": ["shout"]}


def test_a_broken_plugin_is_reported_and_the_rest_keeps_working(tmp_path):
    write_plugin(tmp_path, "broken", "import no_such_module_anywhere\n")
    write_plugin(tmp_path, "raises", """
        from tutor import hookimpl
        @hookimpl
        def register_tools(register):
            raise RuntimeError("boom in hook")
    """)
    write_plugin(tmp_path, "typo", """
        from tutor import hookimpl
        @hookimpl
        def register_toolz(register):
            pass
    """)
    write_plugin(tmp_path, "good", GOOD)
    reg = build_registry([tmp_path])
    failures = {f.name: f.error for f in reg.failures}
    assert "No module named 'no_such_module_anywhere'" in failures["broken"]
    assert "register_tools raised RuntimeError: boom in hook" in failures["raises"]
    assert "register_toolz" in failures["typo"]  # check_pending: a misspelled hook is an error
    assert "shout" in reg.tools and "count" in reg.tools


def test_missing_plugins_dir_is_reported(tmp_path):
    reg = build_registry([tmp_path / "nope"])
    assert any("is not a folder" in f.error for f in reg.failures)


def test_allowlist_keeps_only_named_plugins(tmp_path, monkeypatch):
    write_plugin(tmp_path, "good", GOOD)
    monkeypatch.setenv("TUTOR_PLUGINS", "good,openai_encodings")
    reg = build_registry([tmp_path])
    assert set(reg.tools) == {"shout"}
    assert {p.name for p in reg.plugins} == {"good", "openai_encodings"}


def test_name_clash_is_settled_in_one_place(tmp_path):
    clash = GOOD.replace("register(shout,", "register(shout, name='count',")
    write_plugin(tmp_path, "override", clash)
    write_plugin(tmp_path, "second", clash)
    reg = build_registry([tmp_path])
    # a user's plugin overrides a built-in; between two user plugins the first one wins
    assert reg.tools["count"].plugin == "override"
    assert any("'count' registered by count and by override; kept override's" in c for c in reg.clashes)
    assert any("kept override's" in c and "second" in c for c in reg.clashes)


def test_every_hook_is_called_with_a_register_callback(tmp_path):
    """Meta-test: one plugin implements every hook in the contract; each registration lands."""
    def load(settings):
        raise AssertionError("not loaded in this test")

    def echo(ctx, word: str) -> Reply:
        """Echo one word."""
        return Reply(text=word)

    module = types.SimpleNamespace()
    module.register_tools = hookimpl(lambda register: register(echo))
    module.register_models = hookimpl(lambda register: register(
        ModelSpec("toy", "toy model", "gpt2", "causal-lm", load)))
    module.register_tokenizers = hookimpl(lambda register: register(TokenizerSpec("toy-tok", load)))
    module.register_lessons = hookimpl(lambda register: register(tmp_path))
    module.register_turn_handlers = hookimpl(lambda register: register(echo))
    reg = build_registry(extra=[("everything", module)])
    info = next(p for p in reg.plugins if p.name == "everything")
    assert sorted(info.hooks) == sorted(HOOKS)
    assert reg.tools["echo"].plugin == "everything"
    assert reg.models["toy"].plugin == "everything"
    assert reg.tokenizers["toy-tok"].plugin == "everything"
    assert ("everything", tmp_path) in reg.lessons


def test_hookspecs_are_documented():
    from tutor import hookspecs
    for hook in HOOKS:
        doc = getattr(hookspecs, hook).__doc__
        assert doc and doc.strip().count("\n") == 0, f"{hook} needs a one-line docstring"


def test_entry_point_package_installs_and_its_tool_appears(tmp_path, monkeypatch):
    """The example package under examples/ is installed into the test environment (a target
    folder on sys.path) and found through its entry point in group "tutor"."""
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
                           str(target), str(ROOT / "examples" / "tutor-bytes-plugin")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("TUTOR_ENTRY_POINTS", "1")
    from tutor import chat
    from tutor.context import Tutor

    tutor = Tutor()
    info = next(p for p in tutor.registry.plugins if p.name == "bytes")
    assert info.source == "entry point tutor-bytes-plugin 0.1.0"
    session = tutor.session("ep")
    assert "`/bytes` — Show the UTF-8 bytes of TEXT" in chat.final("/help", session).text
    assert chat.final("/bytes héllo", session).data == {"characters": 5, "bytes": 6}


def test_tutor_plugins_cli_lists_sources_and_failures(tmp_path, capsys):
    import json

    from tutor.cli import main

    write_plugin(tmp_path, "broken", "raise ImportError('cannot load me')\n")
    assert main(["plugins", "--json", "--plugins-dir", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"name": "count", "source": "built-in", "hooks": ["register_tools"],
            "registered": {"tools": ["count"]}} in out["plugins"]
    assert out["failures"][0]["name"] == "broken" and "cannot load me" in out["failures"][0]["error"]
    assert main(["plugins", "--plugins-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "FAILED broken" in text and "count  (built-in)" in text


def test_a_world_writable_plugins_dir_is_refused_with_a_message(tmp_path):
    """#15 problem 9: such a folder loaded without a warning; anyone on the machine could add code."""
    import os

    folder = tmp_path / "shared"
    write_plugin(folder, "shouter", GOOD)
    os.chmod(folder, 0o777)
    reg = build_registry([folder])
    assert "shout" not in reg.tools
    (failure,) = [f for f in reg.failures if f.source == f"plugins dir {folder}"]
    assert "writable by every user" in failure.error and f"chmod o-w {folder}" in failure.error
    os.chmod(folder, 0o755)
    assert "shout" in build_registry([folder]).tools


BROKEN_LESSONS = """
    from pathlib import Path
    from tutor import hookimpl

    @hookimpl
    def register_lessons(register):
        register(Path(__file__).parent / "my_lessons")
"""


def test_broken_plugin_lessons_are_reported_by_tutor_plugins_and_serve(tmp_path, capsys, monkeypatch):
    """#15 problem 9: `tutor serve` dropped a plugin's broken lesson without a word."""
    import json

    import uvicorn

    from tutor.cli import main

    write_plugin(tmp_path / "p", "course", BROKEN_LESSONS)
    (tmp_path / "p" / "my_lessons").mkdir()
    (tmp_path / "p" / "my_lessons" / "bad.yaml").write_text("id: bad\ntitle: Bad\nmodule: training\ncolour: red\n")
    assert main(["plugins", "--json", "--plugins-dir", str(tmp_path / "p")]) == 0
    problems = json.loads(capsys.readouterr().out)["lesson_problems"]
    assert any("bad.yaml" in p and "colour" in p for p in problems), problems
    assert main(["plugins", "--plugins-dir", str(tmp_path / "p")]) == 0
    assert "lesson problem: " in capsys.readouterr().out
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # the start-up log, without serving
    assert main(["serve", "--plugins-dir", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "lesson problem (the lesson was left out): " in err and "bad.yaml" in err


def test_plugins_json_lists_each_tool_with_its_example(capsys, tutor):
    import json

    from tutor import cli

    assert cli.list_plugins(tutor, True) == 0
    out = json.loads(capsys.readouterr().out)
    tools = {t["name"]: t for t in out["tools"]}
    assert set(tools) == set(tutor.registry.tools)
    assert tools["count"]["example"] == tutor.registry.tools["count"].example
    assert all(t["example"].startswith("/" + name) for name, t in tools.items())
    assert tools["patches"]["parameters"]["properties"]["file"]["type"] == "string"
