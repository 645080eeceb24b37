"""The web page: pure translation functions, and a real server on 127.0.0.1 driven by gradio_client."""

import socket

import pytest

from tutor import Reply, Span, Table
from tutor.web import message_text, palette_command, reply_markdown, spans_html


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_history_content_from_page_blocks_or_client_strings():
    assert message_text("plain") == "plain"
    assert message_text([{"type": "text", "text": "block"}, {"type": "text", "text": "s"}]) == "blocks"
    assert message_text({"text": "one"}) == "one"


def test_reply_markdown_has_text_table_and_escaped_spans():
    reply = Reply(text="hi", spans=[Span("<b> x", 1), Span("\n", 2, group=1)], table=Table(["a"], [[1]]))
    md = reply_markdown(reply)
    assert md.startswith("hi") and "| a |" in md
    assert "&lt;b&gt;␣x" in md and "<b>" not in md and 'title="id 1"' in md and "↵" in md


def test_spans_html_escapes_titles():
    assert '"' not in spans_html([Span("a", title='x" onmouseover="alert(1)')]).split('title="')[1].split('" style')[0]


def test_palette_form_becomes_the_command_a_learner_could_type(tutor):
    count = tutor.registry.tools["count"]
    assert palette_command(count, ["o200k_base", "The cat sat"]) == "/count o200k_base The cat sat"
    assert palette_command(count, [None, "just text"]) == "/count just text"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tutor.context import Tutor
    from tutor.settings import Settings
    from tutor.web import build_app

    port = free_port()
    home = tmp_path_factory.mktemp("webhome")
    app = build_app(Tutor(Settings(home=home, offline="yes")))
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_chat_through_gradio_client(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    result = client.predict("/count o200k_base The cat sat on the mat", "learner-1", api_name="/ask")
    assert result["data"] == {"counts": {"o200k_base": 6}, "characters": 22} and not result["error"]
    history, box, learner = client.predict("/count The cat sat on the mat", [], "learner-1", api_name="/chat")
    assert history[0]["role"] == "user" and box == "" and learner == "learner-1"
    assert "| o200k_base |" in message_text(history[-1]["content"])
    # history as plain strings (a client) and as content blocks (the page) both work
    for earlier in ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                    [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]):
        history, _, _ = client.predict("/count gpt2 hello", earlier, "learner-2", api_name="/chat")
        assert len(history) == len(earlier) + 2
        assert "**1 token** with `r50k_base`" in message_text(history[-1]["content"])


def test_errors_come_back_as_messages_not_failures(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    result = client.predict("/count --tokenizer nope hi", "", api_name="/ask")
    assert result["error"] and "Unknown tokenizer" in result["text"] or "not a valid tokenizer" in result["text"]
