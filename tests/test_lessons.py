"""The lesson engine: strict YAML with file:line problems, the curriculum graph, validation
against the real tool schemas, the outline, plugin lessons, and the `tutor lessons` CLI."""

import json
import textwrap
from pathlib import Path

import pytest

from tutor import cli, hookimpl
from tutor.lessons import MODULES, Expect, load_curriculum, load_file, outline, outline_markdown, resolve
from tutor.lessons.checks import validate
from tutor.lessons.progress import Progress
from tutor.plugins import build_registry

GOOD = """\
id: demo
title: Demo lesson
module: tokenization
order: 1
steps:
  - text: Hello.
  - try: /count r50k_base hello
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_the_whole_curriculum_validates(registry):
    cur, problems = validate(registry)
    assert len(cur.lessons) >= 25
    assert [str(p) for p in problems] == []  # every tool a lesson uses exists and accepts its arguments


def test_curriculum_shape():
    cur = load_curriculum()
    assert [m for m in MODULES if any(l.module == m for l in cur.lessons)] == list(MODULES)
    modules = [l.module for l in cur.lessons]
    assert modules == sorted(modules, key=MODULES.index), "lessons are in module order"
    for lesson in cur.lessons:
        assert any(s.kind in ("run", "try") for s in lesson.steps), lesson.id
        number = int(cur.sources[lesson.id].path.name.split("-")[0])
        assert number == lesson.order, f"{lesson.id}: file number and order differ"
    assert sum(len(l.checks) for l in cur.lessons) >= 25


def test_unknown_key_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "01-bad.yaml", GOOD.replace("  - text: Hello.", "  - text: Hello.\n    colour: red"))
    lesson, _, problems = load_file(path)
    assert lesson is None
    assert [(p.line, "unknown key" in p.message and "colour" in p.message) for p in problems] == [(7, True)]


def test_step_kinds_and_quiz_answers_are_checked(tmp_path):
    bad = GOOD + """\
  - {text: a, run: /count a}
  - quiz: {question: "Q", choices: [x, y], answer: z, explanation: e}
  - check: {command: /count a, claim: c, expect: [{path: counts, equals: 1, contains: 2}]}
"""
    _, _, problems = load_file(write(tmp_path, "01-bad.yaml", bad))
    text = "\n".join(map(str, problems))
    assert "exactly one of text, run, try, quiz, check" in text
    assert "must be exactly one of the choices" in text
    assert "exactly one of equals" in text
    assert sorted(p.line for p in problems) == [8, 9, 10]


def test_yaml_syntax_error_has_a_line(tmp_path):
    _, _, problems = load_file(write(tmp_path, "01-bad.yaml", "id: x\ntitle: a: b\n"))
    assert problems[0].line == 2 and "not valid YAML" in problems[0].message


def test_graph_problems_duplicate_missing_and_cycle(tmp_path, registry):
    write(tmp_path, "01-a.yaml", GOOD.replace("id: demo", "id: a").replace("order: 1", "order: 1\nprerequisites: [b]"))
    write(tmp_path, "02-b.yaml", GOOD.replace("id: demo", "id: b").replace("order: 1", "order: 2\nprerequisites: [a, nope]"))
    write(tmp_path, "03-dup.yaml", GOOD.replace("id: demo", "id: a"))
    _, problems = validate(registry, [tmp_path])
    text = "\n".join(map(str, problems))
    assert "duplicate lesson id 'a'" in text and "03-dup.yaml:1" in text
    assert "prerequisite 'nope' is not a lesson id" in text and "02-b.yaml:5" in text
    assert "prerequisite cycle" in text


def test_commands_are_checked_against_tool_schemas(tmp_path, registry):
    write(tmp_path, "01-x.yaml", GOOD + """\
  - run: /count no_such_tokenizer_xyz
  - try: /nosuchtool 1 2
  - run: /patches --size 100 --patch 16 --colour red
  - run: count without slash
""")
    _, problems = validate(registry, [tmp_path])
    by_line = {p.line: p for p in problems}
    assert by_line[9].kind == "unknown tool" and "/nosuchtool" in by_line[9].message
    assert "/patches rejects" in by_line[10].message and "--colour" in by_line[10].message
    assert "is not a tool command" in by_line[11].message
    assert all(p.file.endswith("01-x.yaml") for p in problems)


def test_resolve_paths():
    data = {"modules": [{"name": "transformer.h.0", "parameters": 7}], "ids": [5, 6], "counts": {"gpt2": 3}}
    assert resolve(data, "modules[name=transformer.h.0].parameters") == 7
    assert resolve(data, "ids.1") == 6 and resolve(data, "ids.-1") == 6
    assert resolve(data, "counts.gpt2") == 3
    with pytest.raises(LookupError):
        resolve(data, "counts.bert")
    with pytest.raises(LookupError):
        resolve(data, "modules[name=lm_head].parameters")


@pytest.mark.parametrize("expect,ok", [
    ({"equals": [5, 6]}, True), ({"equals": [5]}, False), ({"contains": 6}, True), ({"not_contains": 6}, False),
    ({"length": 2}, True), ({"one_of": [[1], [5, 6]]}, True)])
def test_expectations(expect, ok):
    assert Expect(path="ids", **expect).test({"ids": [5, 6]})[0] is ok


def test_between_and_float_equality():
    assert Expect(path="p", between=(0.6, 0.9)).test({"p": 0.77})[0]
    assert not Expect(path="p", between=(0.6, 0.9)).test({"p": 0.95})[0]
    assert Expect(path="p", equals=0.1).test({"p": 0.1 + 1e-15})[0]


def test_outline_marks_done_and_current():
    cur = load_curriculum()
    first, second = cur.lessons[0], cur.lessons[1]
    progress = Progress(lesson=second.id, step=2, done=[first.id])
    tree = outline(cur, progress)
    assert [m["module"] for m in tree] == list(MODULES)
    rows = tree[0]["lessons"]
    assert rows[0]["done"] and not rows[0]["current"]
    assert rows[1]["current"] and rows[1]["step"] == 3
    md = outline_markdown(cur, progress)
    assert f"1. ✅ {first.title}" in md and f"▶ **{second.title}** — step 3 of {len(second.steps)}" in md
    assert "1 of" in md


class LessonPlugin:
    def __init__(self, folder):
        self.folder = folder

    @hookimpl
    def register_lessons(self, register):
        register(self.folder)


def test_plugin_lessons_join_their_module_in_order(tmp_path):
    write(tmp_path, "extra.yaml", GOOD.replace("id: demo", "id: plugin-extra").replace("order: 1", "order: 28.5"))
    reg = build_registry(extra=[("extra_lessons", LessonPlugin(tmp_path))])
    cur = load_curriculum(reg)
    ids = [l.id for l in cur.lessons]
    i = ids.index("plugin-extra")
    assert ids[i - 1] == "tok-parents" and ids[i + 1] == "tok-vocab-size"
    assert cur.sources["plugin-extra"].plugin == "extra_lessons"
    assert "*(from extra_lessons)*" in outline_markdown(cur)
    _, problems = validate(reg)
    assert not [p for p in problems if "plugin-extra" in str(p) or "extra.yaml" in p.file]


def test_cli_list_json(capsys):
    assert cli.main(["lessons", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 25
    assert set(rows[0]) >= {"id", "title", "module", "order", "steps", "checks"}
    assert rows[0]["module"] == "architecture" and rows[0]["order"] == 1


def test_cli_show_and_unknown(capsys):
    assert cli.main(["lessons", "show", "tok-parents"]) == 0
    out = capsys.readouterr().out
    assert "t + he" in out and "$ /tokenize gpt2 the" in out
    assert cli.main(["lessons", "show", "no-such-lesson"]) == 1


def test_cli_validate_reports_file_and_line(tmp_path, capsys):
    path = write(tmp_path, "01-bad.yaml", GOOD + "  - run: /count\n  - wat: 1\n")
    assert cli.main(["lessons", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:9:" in out
    assert cli.main(["lessons", "validate", str(write(tmp_path / "ok", "01-ok.yaml", GOOD))]) == 0


def test_an_option_after_the_free_text_is_reported(tmp_path, registry):
    write(tmp_path, "01-x.yaml", GOOD + "  - run: /count r50k_base hello --tokenizer x\n  - run: /patches --size 224\n")
    _, problems = validate(registry, [tmp_path])
    assert problems == []  # /count has no --tokenizer option: that is text, and /patches is fine
    from tutor.tools import Tool
    from tutor import Text

    def echo(ctx, text: Text = "", *, loud: bool = False):
        """Echo."""
    registry.tools["echo-test"] = Tool.from_function(echo, name="echo-test")
    try:
        write(tmp_path, "01-x.yaml", GOOD + "  - run: /echo-test hi there --loud\n")
        _, problems = validate(registry, [tmp_path])
        assert len(problems) == 1 and "--loud comes after the free text" in problems[0].message
    finally:
        del registry.tools["echo-test"]
