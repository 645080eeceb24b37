"""`tutor lessons validate`'s rule: a number a lesson states must be asserted by one of its checks
(or be allowlisted with a reason)."""

import textwrap

from tutor.lessons.numbers import ALLOW_FILE, numbers_in, unchecked
from tutor.lessons import Lesson
from tutor.lessons.checks import validate
from tutor.plugins import build_registry


def lesson(text, *expects, command="/inspect distilgpt2-arch", extra=()):
    steps = [{"text": text}, {"try": "/count a"}, *extra]
    if expects:
        steps.append({"check": {"command": command, "claim": "c", "expect": list(expects)}})
    return Lesson.model_validate({"id": "x", "title": "t", "module": "architecture", "order": 1, "steps": steps})


def found(text, *expects, **kw):
    return [n.text for n in unchecked(lesson(text, *expects, **kw))]


def test_a_number_needs_a_check_that_asserts_it():
    assert found("It has 768 numbers.") == ["768"]
    assert found("It has 768 numbers.", {"path": "w", "equals": 768}) == []
    assert found("It has 768 numbers.", {"path": "w", "equals": 769}) == ["768"]


def test_numbers_inside_an_asserted_string_a_list_or_the_command_count():
    formula = {"path": "f", "equals": "768 x 2304 + 2304 = 1,771,776"}
    assert found("c_attn is 768 x 2,304 + 2,304 = 1,771,776.", formula) == []
    assert found("ids 464 and 3797", {"path": "ids", "equals": [464, 3797]}) == []
    assert found("At 384 pixels, 576 patches.", {"path": "p", "equals": 576}, command="/patches --size 384") == []


def test_rounding_at_the_written_precision_and_scales():
    big = {"path": "n", "equals": 38597376}
    assert found("another 38.6 million parameters", big) == []
    assert found("another 38.7 million parameters", big) == ["38.7 million"]
    assert found("47% of the model", {"path": "s", "equals": 0.4712}) == []
    assert found("16 kHz audio", {"path": "r", "equals": 16000}) == []


def test_a_range_covers_a_number_only_at_its_precision():
    assert found("it runs to 0.046", {"path": "m", "between": [0.0455, 0.0465]}) == []
    assert found("it runs to 0.046", {"path": "m", "between": [0, 1]}) == ["0.046"]


def test_not_facts_are_left_out():
    prose = textwrap.dedent("""\
        GPT-2 and r50k_base (Vaswani et al., 2017) in `GPT2Config(n_layer=6)`; Llama 3, ViT-Base/16,
        weights sum to 1.

        1. a list item
            indented code 12345
        """)
    assert [n.text for n in numbers_in(prose)] == []


def test_validate_reports_file_and_line_and_reads_the_allowlist(tmp_path):
    (tmp_path / "01-x.yaml").write_text(textwrap.dedent("""\
        id: x
        title: t
        module: architecture
        order: 1
        steps:
          - text: |
              First line.
              It has 12 heads and 2.8 s latency.
          - try: /count a
        """), encoding="utf-8")
    _, problems = validate(build_registry(), [tmp_path])
    assert [(p.line, p.message.split(" is stated")[0]) for p in problems] == [(8, "12"), (8, "2.8")]
    (tmp_path / ALLOW_FILE).write_text('[x]\n"2.8" = "a published latency"\n', encoding="utf-8")
    _, problems = validate(build_registry(), [tmp_path])
    assert [p.message.split(" is stated")[0] for p in problems] == ["12"]
