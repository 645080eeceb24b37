"""The web app: pure translation functions, then a real server driven by gradio_client, the safe
defaults (upload limit, CORS allowlist, file routes, escaping), and the MCP listing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from tutor import File, Reply, Span, Table
from tutor.tools import openai_tool_schema
from tutor.context import Tutor
from tutor.settings import Settings
from tutor import web

from conftest import ASSETS
from web_server import running

COURSE = "https://course.example"


# ---- pure functions ----------------------------------------------------------------------------

def test_learner_script_is_shown_escaped_not_run():
    shown = web.escape_learner_text("hi <script>alert(1)</script> and `<b>code</b>`")
    assert "<script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in shown  # code shows the characters


def test_tool_markdown_keeps_safe_html_and_drops_script():
    text = ('**bold** <span class="tok tok-1" onclick="x()">a</span> <script>steal()</script>'
            '<img src="javascript:alert(1)"> <a href="javascript:x">l</a>\n> a quote `<|endoftext|>`')
    clean = web.sanitize_markdown(text)
    assert "<script" not in clean and "steal()" not in clean and "onclick" not in clean
    assert "javascript:" not in clean
    assert '<span class="tok tok-1">a</span>' in clean
    assert "<blockquote>" in clean and "<code>&lt;|endoftext|&gt;</code>" in clean  # quotes and code survive


def test_reply_markdown_parts():
    reply = Reply(text="hello <script>x</script>", spans=[Span("Hi", 1, 0), Span(" <b>", 2, 1, special=True)],
                  table=Table(["a"], [["x|y"]]), progress=0.25, done=False, buttons=["/count hi"])
    md = web.sanitize_markdown(web.reply_markdown(reply))
    assert "<script" not in md
    assert '<span class="tok tok-0" title="id 1">Hi</span>' in md
    assert '<span class="tok tok-special" title="id 2">␣&lt;b&gt;</span>' in md
    assert 'value="0.250"' in md and "25%" in md
    assert "<td>x|y</td>" in md and "<code>/count hi</code>" in md
    assert web.reply_markdown(Reply(text="bad", error=True)).startswith("⚠️ bad")


def test_reply_figure_becomes_an_image_message(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    msgs = web.reply_messages(Reply(text="a plot", figure=fig), tmp_path / "figures")
    plt.close(fig)
    assert msgs[0]["content"] == "<p>a plot</p>"
    path = Path(msgs[1]["content"]["path"])
    assert path.parent == tmp_path / "figures" and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("history", [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
     {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}],
])
def test_history_as_strings_or_content_blocks(history):
    assert web.normalize_history(history) == [{"role": "user", "content": "hi"},
                                              {"role": "assistant", "content": "hello"}]


def test_message_text_from_blocks_or_strings():
    assert web.message_text("plain") == "plain"
    assert web.message_text([{"type": "text", "text": "block"}, {"type": "text", "text": "s"}]) == "blocks"
    assert web.message_text({"text": "one"}) == "one"


def test_spans_escape_text_and_titles():
    md = web.reply_markdown(Reply(text="hi", spans=[Span("<b> x", 1), Span("\n", 2, group=1)]))
    assert "&lt;b&gt;␣x" in md and "<b>" not in md and 'title="id 1"' in md and "↵" in md
    html_ = web.spans_html([Span("a", title='x" onmouseover="alert(1)')])
    assert "onmouseover=\"" not in html_ and "&quot;" in html_


def test_history_keeps_files_and_drops_junk():
    h = [{"role": "assistant", "content": [{"type": "file", "file": {"path": "/x/a.png"}}]},
         {"role": "system", "content": "no"}, "junk", {"role": "user", "content": ""}]
    assert web.normalize_history(h) == [{"role": "assistant", "content": {"path": "/x/a.png"}}]
    assert web.normalize_history(None) == []


def test_palette_command(tutor):
    count = tutor.registry.tools["count"]
    assert web.palette_command(count, ["o200k_base", "The cat"]) == "/count o200k_base The cat"
    assert web.palette_command(count, [None, "hi there"]) == "/count hi there"


def test_upload_path_becomes_file_option(tutor):
    up = web.upload_dir() / "abc" / "notes.txt"
    tools = tutor.registry.tools
    assert web.attach_upload("/finetune smollm2-135m", str(up), tools) == f"/finetune --file {up} smollm2-135m"
    assert web.attach_upload("", None, tools) == ""
    with pytest.raises(Exception, match="uploaded"):
        web.attach_upload("/finetune", "/etc/passwd", tools)


def test_uploads_go_to_a_tool_that_takes_them(tutor):
    tools = tutor.registry.tools
    accept = web.accepted_suffixes(tools)
    assert {".txt", ".md", ".png", ".jpg", ".wav", ".mp3", ".flac"} <= set(accept)
    assert ".json" not in accept  # /finetune refuses it, so the button does not offer it
    up = web.upload_dir() / "abc"
    assert web.attach_upload("", str(up / "cat.png"), tools) == f"/patches --file {up / 'cat.png'}"
    assert web.attach_upload("", str(up / "a.flac"), tools) == f"/spectrogram --file {up / 'a.flac'}"
    assert web.attach_upload("", str(up / "n.txt"), tools) == f"/finetune --file {up / 'n.txt'}"
    assert web.attach_upload("/bpe train", str(up / "n.txt"), tools) == f"/bpe --file {up / 'n.txt'} train"
    assert web.attach_upload("/patches --size 96", str(up / "a.jpg"), tools) == \
        f"/patches --file {up / 'a.jpg'} --size 96"
    with pytest.raises(Exception, match="No tool takes a .exe file"):
        web.attach_upload("", str(up / "x.exe"), tools)


def test_bpe_corpus_is_a_name_not_an_upload(tutor):
    assert web.check_file_args("/bpe train --corpus lessons --merges 5", tutor) is None
    assert "uploaded" in web.check_file_args("/patches --file /etc/hostname", tutor)


def test_signed_learner():
    value = web.sign_learner("s3cret", "ada")
    assert web.verify_learner("s3cret", value) == "ada"
    assert web.verify_learner("s3cret", "ada." + "0" * 64) is None
    assert web.verify_learner("other", value) is None
    assert web.verify_learner("s3cret", None) is None


def test_analytics_off_by_default():
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_a_turn_keeps_each_finished_reply_and_replaces_only_partial_ones(tutor, tmp_path):
    """An explanation that runs a tool streams the tool's reply, then its own words: the tool's
    finished reply must stay in the chat while the partial words are replaced by the answer."""
    import types

    from tutor import hookimpl
    from tutor.plugins import build_registry
    from tutor.web.turns import Turns

    def explains(text, session):
        if text != "explain":
            return None
        return iter([Reply(text="tool output"), Reply(text="The answ", done=False), Reply(text="The answer.")])
    module = types.SimpleNamespace(register_turn_handlers=hookimpl(lambda register: register(explains)))
    t = Tutor(Settings(home=tmp_path, assets_dir=ASSETS, offline="yes"), build_registry(extra=[("explains", module)]))
    *_, history = Turns(t).converse("explain", [], "learner-x")
    assert [m["content"] for m in history] == ["<p>explain</p>", "<p>tool output</p>", "<p>The answer.</p>"]


# ---- a real server -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tutor, tmp_path_factory):
    """The tutor at / with a tiny upload limit and one allowed origin, MCP on, on a free port."""
    settings = Settings(home=tmp_path_factory.mktemp("webhome"), assets_dir=ASSETS, offline="yes",
                        max_upload_mb=0.01, cors_origins=[COURSE])
    t = Tutor(settings, registry=tutor.registry)
    with running(web.server_app(t, mcp=True)) as url:
        yield url


@pytest.fixture(scope="module")
def client(site):
    from gradio_client import Client
    return Client(site + "/", verbose=False)


def test_ask_count_round_trip(client, tutor):
    out = client.predict("/count o200k_base The cat sat on the mat", api_name="/ask")
    expected = tutor.tokenizer("o200k_base").count("The cat sat on the mat")
    assert out["error"] is False and out["data"]["counts"] == {"o200k_base": expected}


@pytest.mark.parametrize("blocks", [False, True])
def test_chat_history_round_trip(client, blocks):
    def content(text):
        return [{"type": "text", "text": text}] if blocks else text
    history = [{"role": "user", "content": content("/help")},
               {"role": "assistant", "content": content("the tools")}]
    out, box, learner = client.predict("/count o200k_base hello", history, "", api_name="/chat")
    assert box == "" and len(learner) == 65  # the server's session token: ID.MAC
    assert [m["role"] for m in out] == ["user", "assistant", "user", "assistant"]
    assert out[1]["content"] == "the tools" and "tokens" in out[3]["content"]


def test_script_typed_into_chat_is_shown_escaped(client):
    out, _, _ = client.predict("<script>window.pwned=1</script>", [], "", api_name="/chat")
    assert out[0]["content"] == "<p>&lt;script&gt;window.pwned=1&lt;/script&gt;</p>"
    assert all("<script" not in str(m["content"]) for m in out)


def test_errors_are_chat_messages(client):
    out, _, _ = client.predict("/count", [], "", api_name="/chat")
    assert out[-1]["content"].startswith("<p>⚠️") and "Give a text" in out[-1]["content"]


def test_typed_server_path_is_refused():
    from types import SimpleNamespace
    from tutor import Tool

    def read(ctx, *, file: File = "") -> Reply:
        """Read a file (a test tool)."""
        return Reply(text="read")

    fake = SimpleNamespace(registry=SimpleNamespace(tools={"read": Tool.from_function(read)}, names=lambda k: []),
                           settings=SimpleNamespace(max_input_chars=1000))
    refused = web.check_file_args("/read --file /etc/passwd", fake)
    assert refused and "Upload" in refused and "/etc" not in refused
    up = web.upload_dir() / "0123" / "notes.txt"
    assert web.check_file_args(f"/read --file {up}", fake) is None
    assert web.check_file_args("/read --file ../../etc/passwd", fake)
    assert web.check_file_args("not a command", fake) is None


def test_file_parameters_come_from_the_schema_not_their_names():
    """`--corpus` names a built-in corpus (a choice), `--file` an upload: the schema says which."""
    from types import SimpleNamespace
    from tutor.plugins import build_registry

    reg = build_registry()
    assert [p.name for p in reg.tools["bpe"].params if p.file] == ["file"]
    assert [p.name for p in reg.tools["finetune"].params if p.file] == ["file"]
    fake = SimpleNamespace(registry=reg, settings=SimpleNamespace(max_input_chars=1000))
    assert web.check_file_args("/bpe train --corpus lessons", fake) is None
    assert web.check_file_args("/bpe train --file /etc/hostname", fake)


def test_chat_through_gradio_client(client):
    """(from the first version's tests) the learner token the server returns keeps working across calls."""
    result = client.predict("/count o200k_base The cat sat on the mat", "", api_name="/ask")
    assert result["data"]["counts"] == {"o200k_base": 6} and result["data"]["characters"] == 22
    assert not result["error"] and "<td>o200k_base</td>" in result["html"]
    token = result["learner"]
    history, box, learner = client.predict("/count The cat sat on the mat", [], token, api_name="/chat")
    assert history[0]["role"] == "user" and box == "" and learner == token
    assert "<td>o200k_base</td>" in web.message_text(history[-1]["content"])
    for earlier in ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                    [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]):
        history, _, _ = client.predict("/count gpt2 hello", earlier, "", api_name="/chat")
        assert len(history) == len(earlier) + 2
        assert "<strong>1 token</strong> with <code>gpt2</code>" in web.message_text(history[-1]["content"])


def test_plain_ask_route_gives_what_gradios_ask_gives(site, client):
    """POST /api/ask (no Gradio queue, no per-call session state over the page) answers the same."""
    message = "/count o200k_base The cat sat on the mat"
    r = httpx.post(site + "/api/ask", json={"message": message})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    plain, gradio = r.json(), client.predict(message, api_name="/ask")
    assert {k: plain[k] for k in ("text", "html", "data", "error")} == {k: gradio[k] for k in ("text", "html", "data", "error")}
    assert len(plain["learner"]) == 65  # the server's session token, to send next time
    bad = httpx.post(site + "/api/ask", json={"message": "/count --tokenizer nope hi"}).json()
    assert bad["error"] and "nope" in bad["text"]


def test_ask_errors_come_back_as_messages(client):
    result = client.predict("/count --tokenizer nope hi", "", api_name="/ask")
    assert result["error"] and ("Unknown tokenizer" in result["text"] or "not a valid tokenizer" in result["text"])


def test_oversize_upload_is_refused(site):
    r = httpx.post(site + "/gradio_api/upload", files={"files": ("big.txt", b"x" * 20_000, "text/plain")})
    assert r.status_code == 413 and "maximum allowed size" in r.text
    ok = httpx.post(site + "/gradio_api/upload", files={"files": ("small.txt", b"hello", "text/plain")})
    assert ok.status_code == 200 and web.is_uploaded(ok.json()[0])


def test_cross_origin_only_for_the_allowlist(site):
    evil = {"Origin": "https://evil.example"}
    pre = httpx.options(site + "/gradio_api/info", headers={**evil, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in httpx.get(site + "/config", headers=evil).headers
    good = httpx.get(site + "/config", headers={"Origin": COURSE})
    assert good.headers["access-control-allow-origin"] == COURSE


@pytest.mark.parametrize("path", ["/gradio_api/file=/etc/passwd", "/gradio_api/file=%2e%2e/%2e%2e/etc/passwd",
                                  "/gradio_api/file=../../../../etc/passwd"])
def test_path_traversal_file_request_is_refused(site, path):
    r = httpx.get(site + path)
    assert r.status_code in (403, 404) and "root:" not in r.text


def test_mcp_lists_and_calls_tools(site, tutor):
    pytest.importorskip("mcp")
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def go():
        async with streamablehttp_client(site + "/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as s:
                await s.initialize()
                listed = {t.name: t for t in (await s.list_tools()).tools}
                called = await s.call_tool("count", {"tokenizer": "o200k_base", "text": "hello world"})
                return listed, called

    listed, called = asyncio.run(go())
    for name, tool in tutor.registry.tools.items():
        fn = openai_tool_schema(tool)["function"]  # what the explainer offers a model (#13)
        mcp_tool = listed[fn["name"]]
        schema = fn["parameters"]
        assert schema == tool.json_schema()
        assert set(mcp_tool.inputSchema["properties"]) == set(schema["properties"])
        assert set(mcp_tool.inputSchema.get("required", [])) == set(schema["required"])
        assert mcp_tool.description.startswith(tool.summary) and fn["description"].startswith(tool.summary)
    n = tutor.tokenizer("o200k_base").count("hello world")
    assert f'"counts": {{"o200k_base": {n}}}' in called.content[0].text


def test_mount_under_a_path_with_root_path(tutor, tmp_path):
    """A course site mounts the tutor at /tutor behind a proxy that adds /course."""
    from fastapi import FastAPI
    from gradio_client import Client
    site = FastAPI()
    site.get("/")(lambda: {"course": "ok"})
    t = Tutor(Settings(home=tmp_path / "h", assets_dir=ASSETS, offline="yes"), registry=tutor.registry)
    web.mount(site, "/tutor", t)
    with running(site, root_path="/course") as url:  # the proxy strips /course before the site
        assert httpx.get(url + "/").json() == {"course": "ok"}
        assert httpx.get(url + "/tutor/").status_code == 200
        assert httpx.get(url + "/tutor/config").json()["root"] == url + "/course/tutor"
        out = Client(url + "/tutor/", verbose=False).predict("/count o200k_base hi", api_name="/ask")
        assert out["data"]["counts"]["o200k_base"] == 1
        plain = httpx.post(url + "/tutor/api/ask", json={"message": "/count o200k_base hi"}).json()
        assert plain["data"]["counts"]["o200k_base"] == 1


def test_signed_learner_required_when_secret_set(tutor, tmp_path):
    from fastapi import FastAPI
    site = FastAPI()
    t = Tutor(Settings(home=tmp_path / "h", assets_dir=ASSETS, offline="yes", learner_secret="k"),
              registry=tutor.registry)
    web.mount(site, "/tutor", t)
    with running(site) as url:
        assert httpx.get(url + "/tutor/").status_code == 401
        assert httpx.get(url + "/tutor/", headers={web.LEARNER_HEADER: "ada.bad"}).status_code == 401
        ok = httpx.get(url + "/tutor/", headers={web.LEARNER_HEADER: web.sign_learner("k", "ada")})
        assert ok.status_code == 200


def test_a_long_table_under_coloured_text_starts_folded():
    rows = [[i, f"tok{i}"] for i in range(20)]
    folded = web.reply_markdown(Reply(text="t", spans=[Span("a", 1)], table=Table(["step", "token"], rows)))
    assert "<details><summary>Table: 20 rows" in folded and "| 19 | tok19 |" in folded
    plain = web.reply_markdown(Reply(text="t", table=Table(["step", "token"], rows)))
    assert "<details>" not in plain
