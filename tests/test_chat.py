"""One chat turn, without a server: commands, help, streaming, and errors that never escape."""

import types

from tutor import Reply, ToolError, chat, hookimpl
from tutor.context import Tutor
from tutor.plugins import build_registry
from tutor.settings import Settings


def make_tutor(**tools) -> Tutor:
    module = types.SimpleNamespace(register_tools=hookimpl(lambda register: [register(f) for f in tools.values()]))
    return Tutor(Settings(), build_registry(extra=[("testtools", module)]))


def fails(ctx) -> Reply:
    """Always raises a bug."""
    raise ZeroDivisionError("division by zero")


def refuses(ctx) -> Reply:
    """Always refuses politely."""
    raise ToolError("Give me a number between 1 and 3.")


def stream(ctx, n: int = 3):
    """Count up, one reply per step."""
    for i in range(n):
        yield Reply(text=f"step {i}", done=False, progress=i / n)
    yield Reply(text="done", data={"n": n})


def plain(ctx) -> str:
    """Returns a plain string."""
    return "just text"


def test_command_reply_carries_data():
    tutor = make_tutor()
    reply = chat.final("/count o200k_base The cat sat on the mat", tutor.session())
    assert not reply.error and reply.data["counts"] == {"o200k_base": 6} and reply.data["characters"] == 22


def test_count_agrees_with_tiktoken_for_every_encoding():
    import tiktoken

    tutor = make_tutor()
    text = "Tokenizers split text into pieces: ünïcode, 日本語, numbers 1234567 and    spaces."
    reply = chat.final(f"/count {text}", tutor.session())
    for name in ("r50k_base", "cl100k_base", "o200k_base"):
        assert reply.data["counts"][name] == len(tiktoken.get_encoding(name).encode_ordinary(text))
    assert reply.data["characters"] == len(text)


def test_gpt2_is_the_tokenizers_object_with_r50k_base_counts():
    tutor = make_tutor()
    reply = chat.final("/count gpt2 hello world", tutor.session())
    assert reply.data["counts"] == {"gpt2": 2}
    assert chat.final("/count r50k_base hello world", tutor.session()).data["counts"] == {"r50k_base": 2}


def test_help_and_help_for_one_tool():
    tutor = make_tutor(stream=stream)
    session = tutor.session()
    listing = chat.final("/help", session)
    assert "`/count`" in listing.text and "`/stream`" in listing.text and "count" in listing.data["tools"]
    one = chat.final("/help count", session)
    assert "Usage: `/count [--tokenizers TOKENIZERS] [TOKENIZER] [TEXT]`" in one.text and "Example:" in one.text


def test_a_tool_bug_becomes_a_readable_message():
    tutor = make_tutor(fails=fails)
    reply = chat.final("/fails", tutor.session())
    assert reply.error and "/fails failed: ZeroDivisionError" in reply.text and "bug in the plugin" in reply.text


def test_a_tool_error_is_the_users_to_fix():
    tutor = make_tutor(refuses=refuses)
    reply = chat.final("/refuses", tutor.session())
    assert reply.error and reply.text == "Give me a number between 1 and 3."


def test_streaming_tool_yields_progress_then_final():
    tutor = make_tutor(stream=stream)
    replies = list(chat.respond("/stream --n 2", tutor.session()))
    assert [r.text for r in replies] == ["step 0", "step 1", "done"]
    assert [r.done for r in replies] == [False, False, True] and replies[-1].data == {"n": 2}


def test_plain_return_values_become_replies():
    tutor = make_tutor(plain=plain)
    assert chat.final("/plain", tutor.session()).text == "just text"


def test_nothing_a_user_types_escapes_as_an_exception():
    tutor = make_tutor()
    session = tutor.session()
    for message in ["", "   ", "/", "/count", '/count "', "/nope", "/count --tokenizer", "/count --x=1 hi",
                    "/count not-a-tokenizer-word \x00\ud800", "/help nope", "hello there", "\n/count\n"]:
        replies = list(chat.respond(message, session))
        assert replies and all(isinstance(r, Reply) and r.text for r in replies), message


def test_unknown_tokenizer_lists_the_available_ones():
    tutor = make_tutor()
    reply = chat.final("/count --tokenizer o200k hi", tutor.session())
    assert reply.error and "Did you mean o200k_base" in reply.text


def test_sessions_keep_their_own_state():
    tutor = make_tutor()
    a, b = tutor.session("a"), tutor.session("b")
    a.context().state("tool")["x"] = 1
    assert b.context().state("tool") == {} and tutor.session("a").context().state("tool") == {"x": 1}


def test_a_plugin_turn_handler_answers_before_free_question_search():
    """register_turn_handlers: a plugin's handler is tried after lesson navigation and before
    search (which answers anything); returning None passes the message on."""
    def weather(text, session):
        return [Reply(text="sunny", data={"handler": "weather"})] if "weather" in text or "where" in text else None

    module = types.SimpleNamespace(register_turn_handlers=hookimpl(lambda register: register(weather)))
    t = Tutor(Settings(), build_registry(extra=[("weather", module)]))
    assert chat.final("what is the weather?", t.session()).data == {"handler": "weather"}
    assert chat.final("what is a token?", t.session()).data.get("covered") is not None  # search answered
    where = chat.final("where am i", t.session()).data
    assert where.get("handler") is None and "done" in where  # lesson navigation came first
    info = next(p for p in t.registry.plugins if p.name == "weather")
    assert info.registered == {"turn_handlers": ["weather"]}
