"""The command parser: shell quoting, typed arguments, the rest of the line, clear errors."""

from typing import Annotated, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutor import Arg, Reply, Text, Tool, ToolError
from tutor.commands import help_text, parse


def demo(ctx, model: Annotated[str | None, Arg("a model", choices="models")] = None, *,
         temperature: Annotated[float, Arg("softness", min=0.0, max=5.0)] = 1.0,
         steps: int = 3, greedy: bool = False, method: Literal["lora", "full"] = "lora",
         prompt: Text = "") -> Reply:
    """Demo tool used by the parser tests."""


def words(ctx, names: list[str]) -> Reply:
    """Takes a list of words."""


TOOLS = {t.name: t for t in (Tool.from_function(demo, example="/demo hi"), Tool.from_function(words))}
class Names:
    """The registry as the parser sees it: two models, and hub ids accepted like the real one."""

    def names(self, kind):
        return ["tiny", "smollm2-135m"]

    def accepts(self, kind, word):
        return word in self.names(kind) or "/" in word


def p(line: str, max_chars: int = 1000):
    return parse(line, TOOLS, Names(), max_chars).args


def test_schema_from_signature():
    tool = TOOLS["demo"]
    assert [x.name for x in tool.params] == ["model", "temperature", "steps", "greedy", "method", "prompt"]
    assert tool.params[0].choices == "models" and not tool.params[0].option
    assert tool.params[1].option and tool.params[1].type is float and tool.params[1].default == 1.0
    assert tool.params[4].choices == ("lora", "full")
    assert tool.params[5].rest
    assert tool.usage() == "/demo [--temperature TEMPERATURE] [--steps STEPS] [--greedy] [--method METHOD] [MODEL] [PROMPT]"
    schema = tool.json_schema()
    assert schema["properties"]["method"]["enum"] == ["lora", "full"]
    assert schema["properties"]["steps"]["type"] == "integer"


def test_optional_positional_taken_only_when_it_is_a_known_name():
    assert p("/demo tiny The cat") == {"model": "tiny", "prompt": "The cat"}
    assert p("/demo The cat") == {"prompt": "The cat"}


def test_a_hub_id_is_a_model_word_even_when_nobody_registered_it():
    from tutor.plugins import Registry

    assert p("/demo EleutherAI/gpt-neo-125m Hello") == {"model": "EleutherAI/gpt-neo-125m", "prompt": "Hello"}
    reg = Registry()
    assert reg.accepts("models", "EleutherAI/gpt-neo-125m") and reg.accepts("tokenizers", "google-t5/t5-small")
    assert not reg.accepts("models", "gpt2-large") and not reg.accepts("tools", "a/b")


def test_rest_of_line_is_kept_verbatim():
    assert p("/demo tiny   two  spaces\nand a newline ")["prompt"] == "two  spaces\nand a newline "
    assert p("/demo don't stop")["prompt"] == "don't stop"  # an apostrophe is not a quote error
    assert p('/demo " leading space"')["prompt"] == " leading space"  # one quoted word is unquoted
    assert p('/demo "unbalanced text')["prompt"] == '"unbalanced text'


def test_options_are_typed():
    args = p("/demo --temperature 0.7 --steps=5 --greedy --method full tiny hello")
    assert args == {"temperature": 0.7, "steps": 5, "greedy": True, "method": "full", "model": "tiny",
                    "prompt": "hello"}
    assert p("/words a b c") == {"names": ["a", "b", "c"]}


@pytest.mark.parametrize("line, expected", [
    ("/dmo hi", "There is no tool called /dmo. Did you mean demo?"),
    ("/demo --temperature warm hi", "--temperature expects a number, but got 'warm'"),
    ("/demo --steps 2.5 hi", "--steps expects a whole number, but got '2.5'"),
    ("/demo --temperature 9 hi", "--temperature must be at least 0 and at most 5, but got 9"),
    ("/demo --method qlora hi", "Choose one of: lora, full."),
    ("/demo --tempreature 1 hi", "/demo has no option --tempreature. Did you mean --temperature"),
    ("/demo --steps", "--steps needs a value (int)"),
    ("/words", "/words needs NAMES"),
    ("/", "A command starts with / and a tool name"),
    ('/words "a b', "Unbalanced quote"),
])
def test_errors_say_what_was_wrong_and_how_to_fix_it(line, expected):
    with pytest.raises(ToolError) as e:
        p(line)
    assert expected in str(e.value)


def test_input_over_the_size_limit():
    with pytest.raises(ToolError, match="the limit is 100"):
        p("/demo " + "x" * 200, max_chars=100)


def test_help_lists_tools_and_one_tool_in_detail():
    assert "- `/demo` — Demo tool used by the parser tests." in help_text(TOOLS)
    one = help_text(TOOLS, "demo")
    assert "| `--temperature` | float | 1.0 | softness |" in one
    assert "Example: `/demo hi`" in one
    with pytest.raises(ToolError, match="Did you mean demo"):
        help_text(TOOLS, "dem")


def test_tool_without_docstring_is_refused():
    def nodoc(ctx):
        pass
    with pytest.raises(TypeError, match="needs a docstring"):
        Tool.from_function(nodoc)


def test_tool_names_are_case_insensitive():
    """#15: `/COUNT hello` raised ValueError (the lower-cased name was looked for in the line)."""
    call = parse("/DEMO --steps 4 tiny The Cat", TOOLS, Names(), 1000)
    assert call.tool.name == "demo" and call.args == {"steps": 4, "model": "tiny", "prompt": "The Cat"}
    assert p("/Demo\nhi") == {"prompt": "hi"}
    with pytest.raises(ToolError, match="no tool called /nope"):
        p("/NOPE x")


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999"])
def test_nan_and_inf_are_refused_for_every_float(value):
    """#15: NaN passed `min`/`max` (every comparison with NaN is false); inf passed an unbounded one."""
    with pytest.raises(ToolError, match=r"--temperature must be a finite number, but got"):
        p(f"/demo --temperature {value} hi")
    assert p("/demo --temperature 5 hi")["temperature"] == 5.0


def _rest_by_copies(line: str, start: int) -> str:
    """The rest of the line as the parser read it before it matched in place (slices and strips)."""
    import shlex

    rest = line[start:]
    stripped = rest.strip()
    if stripped[:1] in "'\"" and stripped[-1:] == stripped[:1] and len(stripped) > 1:
        try:
            words = shlex.split(stripped)
        except ValueError:
            return rest
        if len(words) == 1:
            return words[0]
    return rest


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["/demo", "/", " /", "\n/ ", "/DEMO"]),
       st.text(alphabet=st.sampled_from(" \t\n\x1c\u00a0\u3000'\"\\/aZé"), max_size=12))
def test_matching_in_place_reads_a_line_as_slicing_did(head, tail):
    """The tool name and the rest of the line are matched in place so a 1 MB text is not copied
    for each look (P1); they must read every line exactly as the split-and-strip code did,
    whitespace of every kind (str.isspace and re's \\s agree on all of Unicode) and quotes included."""
    from tutor.commands import _rest, command_name

    line = head + tail
    stripped = line.strip()
    assert command_name(line) == (stripped[1:].split(maxsplit=1) or [""])[0].lower()
    for start in range(len(line) + 1):
        assert _rest(line, start) == _rest_by_copies(line, start)
