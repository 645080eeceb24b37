"""The LLM explainer (#13 point 4): prompts, citations, tool schemas, and every way a model server
can fail, each against a real HTTP server on 127.0.0.1 that sends what real servers send.

The answers these servers stream are recordings of the documented chat.completion.chunk shape
(tests named *_replayed_recording); the real model is in test_explainer_serve.py (slow).
"""

from __future__ import annotations

import json
import re

import pytest

from openai_wire import chunk, closed_port, error, stream, timed, wire, words, Send
from tutor import chat
from tutor.commands import command_line, parse
from tutor.explain_server import ServerExplainer
from tutor.explain_prompt import citations, prompt_messages
from tutor.explainer import Passage, explainer_for
from tutor.settings import Settings
from tutor.tools import Reply, openai_tool_schema


def lesson_passage(tutor, lesson_id: str, step: int) -> Passage:
    """A real lesson step, as retrieval hands it to the explainer."""
    lesson = tutor.curriculum.get(lesson_id)
    return Passage(lesson.id, lesson.title, step, lesson.steps[step - 1].text)


@pytest.fixture
def passages(tutor):
    return [lesson_passage(tutor, "arch-attention", 3), lesson_passage(tutor, "arch-attention", 1)]


FALLBACK = Reply(text="From **lesson 4 · Self-attention** (step 3):\n\n> The 768 numbers ...",
                 data={"covered": True, "lesson": "arch-attention", "step": 3}, buttons=["lesson arch-attention"])


def explain(url, passages, session=None, timeout=30.0, tools=(), recent=(), question="why divide by sqrt(d_k)?"):
    """Every reply of one explanation, and the seconds it took."""
    ex = ServerExplainer(url, "recorded-model", None, timeout, list(tools))
    run = (lambda line: chat.respond(line, session)) if session else (lambda line: iter([]))
    return timed(lambda: list(ex.explain(question, passages, list(recent), FALLBACK, run)))


# ---- pure parts -------------------------------------------------------------------------------

def test_citations_are_read_back_and_unknown_ones_named(passages):
    cited, unknown = citations("Scores are divided by 8 [arch-attention step 3], see also "
                               "[Arch-Attention, step 1] and [arch-mlp step 9].", passages)
    assert [(p.lesson_id, p.step) for p in cited] == [("arch-attention", 3), ("arch-attention", 1)]
    assert unknown == ["[arch-mlp step 9]"]


def test_prompt_holds_the_tagged_passages_and_bounded_tool_data(passages):
    big = {"ids": list(range(5000))}
    msgs = prompt_messages("why?", passages, [("/tokenize gpt2 hi", {"ids": [5303]}), ("/count x", big)])
    system = msgs[0]["content"]
    assert "[arch-attention step 3]" in system and "divided by sqrt(64)" in system
    assert "/tokenize gpt2 hi -> {\"ids\":[5303]}" in system
    assert len(system) < 8000 and "…(cut)" in system
    assert msgs[1] == {"role": "user", "content": "why?"}


def test_explainer_for_reads_the_settings(tutor):
    assert explainer_for(Settings(home=tutor.settings.home)) is None
    ex = explainer_for(Settings(home=tutor.settings.home, llm_url="http://127.0.0.1:9/v1", llm_model="m"), tutor)
    assert isinstance(ex, ServerExplainer) and "m (model server at 127.0.0.1:9)" in ex.label
    assert {s["function"]["name"] for s in ex.schemas} == {t.api_name for t in tutor.registry.tools.values()}
    assert explainer_for(Settings(home=tutor.settings.home, llm_url="http://x/v1", llm="none")) is None
    local = explainer_for(Settings(home=tutor.settings.home, llm="local"), tutor)
    assert "135M" in local.label and "often wrong" in local.label
    with pytest.raises(ValueError, match="TUTOR_LLM_URL"):
        explainer_for(Settings(home=tutor.settings.home, llm="server"))


def test_the_tutor_holds_one_explainer_and_never_prints_its_key(tmp_path):
    from tutor.context import Tutor
    from tutor.explain_local import LocalExplainer
    assert Tutor(Settings(home=tmp_path)).explainer is None  # the embedded default: no model
    t = Tutor(Settings(home=tmp_path, llm_url="http://127.0.0.1:9/v1", llm_api_key="sk-secret-123"))
    assert t.explainer is t.explainer and isinstance(t.explainer, ServerExplainer)
    assert "sk-secret-123" not in json.dumps(t.settings.public())
    assert isinstance(Tutor(Settings(home=tmp_path, llm="local")).explainer, LocalExplainer)


def test_the_llm_settings_come_from_tutor_llm_variables(monkeypatch):
    for k, v in {"TUTOR_LLM_URL": "http://127.0.0.1:11434/v1", "TUTOR_LLM_MODEL": "qwen2.5:7b",
                 "TUTOR_LLM_API_KEY": "k", "TUTOR_LLM_TIMEOUT": "12.5"}.items():
        monkeypatch.setenv(k, v)
    ex = explainer_for(Settings())
    assert (ex.url, ex._model, ex.timeout) == ("http://127.0.0.1:11434/v1", "qwen2.5:7b", 12.5)
    assert ex.client.api_key == "k" and ex.client.max_retries == 0
    monkeypatch.setenv("TUTOR_LLM", "none")
    assert explainer_for(Settings()) is None


def test_every_tool_schema_is_a_valid_openai_function(tutor):
    for tool in tutor.registry.tools.values():
        fn = openai_tool_schema(tool)["function"]
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", fn["name"]), fn["name"]
        assert fn["parameters"] == tool.json_schema() and fn["description"].startswith(tool.summary)


@pytest.mark.parametrize("line", ["/count o200k_base hello world", "/tokenize gpt2 unhappiness",
                                  "/compare --tokenizers gpt2,bert-base-uncased tokenization",
                                  "/next --temperature 0.7 --top-k 20 The cat sat on the",
                                  "/generate --greedy --max-tokens 5 distilgpt2-arch The cat", "/decode gpt2 464 3797"])
def test_command_line_from_named_arguments_parses_back_the_same(tutor, line):
    reg = tutor.registry
    call = parse(line, reg.tools, reg, 10_000)
    again = parse(command_line(call.tool, call.args), reg.tools, reg, 10_000)
    assert again.tool is call.tool and again.args == call.args


def test_command_line_names_an_unknown_parameter(tutor):
    from tutor.tools import ToolError
    with pytest.raises(ToolError, match="has no parameter 'txt'.*Its parameters"):
        command_line(tutor.registry.tools["count"], {"txt": "hi"})


# ---- a streamed answer --------------------------------------------------------------------------

def test_streamed_cited_answer_replayed_recording(passages):
    answer = ("Each head divides its scores by sqrt(64) = 8 so that the softmax does not saturate "
              "[arch-attention step 3].")
    with wire(lambda req: stream(words(answer), gap=0.1)) as (url, w):
        replies, took = explain(url, passages)
    *partials, last = replies
    assert len(partials) >= 2 and all(not r.done and "recorded-model" in r.text for r in partials)
    assert last.done and not last.error
    assert last.text.startswith(answer) and "written by recorded-model" in last.text
    assert "**Sources:** [arch-attention step 3]" in last.text
    assert "> The 768 numbers of each are split into 12 heads" in last.text  # the grounding passage, quoted
    assert last.data["covered"] and last.data["lesson"] == "arch-attention" and last.data["step"] == 3
    assert last.data["cited"] == [{"lesson": "arch-attention", "step": 3}]
    assert last.data["explainer"] == {"model": "recorded-model", "server": url}
    req = w.requests[0]
    assert req["stream"] is True and req["model"] == "recorded-model" and "tools" not in req
    assert "[arch-attention step 1]" in req["messages"][0]["content"]


def test_no_passages_means_no_explanation(passages):
    with wire(lambda req: stream(words("made up"))) as (url, w):
        replies, _ = explain(url, [])
    assert replies == [FALLBACK] and w.requests == []


def test_model_name_comes_from_the_server_when_unset_replayed_recording(passages):
    listing = Send(200, json.dumps({"object": "list", "data": [
        {"id": "HuggingFaceTB/SmolLM2-135M-Instruct", "object": "model", "created": 0, "owned_by": "me"}]}).encode(),
        {"Content-Type": "application/json"})
    with wire(lambda req: listing if req["path"].endswith("/models") else stream(words("Yes [arch-attention step 3]."))
              ) as (url, w):
        ex = ServerExplainer(url, None, None, 5.0)
        last = list(ex.explain("q", passages, [], FALLBACK, lambda line: iter([])))[-1]
    assert w.requests[1]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "written by HuggingFaceTB/SmolLM2-135M-Instruct" in last.text


# ---- tool calls ---------------------------------------------------------------------------------

def _tool_call_then_answer(req):
    """A recording of OpenAI's documented streamed tool call: the name first, the arguments in
    pieces, finish_reason tool_calls; once the tool's result is in the messages, the answer."""
    if not any(m["role"] == "tool" for m in req["messages"]):
        return stream([
            chunk(tool_calls=[{"index": 0, "id": "call_abc123", "type": "function",
                               "function": {"name": "tokenize", "arguments": ""}}]),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"tokenizer": "gpt2", '}}]),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": '"text": "unhappiness"}'}}]),
            chunk(finish="tool_calls")])
    return stream(words("GPT-2 cuts it into pieces, as the tool shows [arch-attention step 3]."))


def test_tool_call_replayed_recording(tutor, session, passages):
    tools = list(tutor.registry.tools.values())
    with wire(_tool_call_then_answer) as (url, w):
        replies, _ = explain(url, passages, session, tools=tools)
    first, second = w.requests
    assert first["tools"] == [openai_tool_schema(t) for t in tools]  # the MCP listing's schemas
    ran = [r for r in replies if r.done and r is not replies[-1]]
    expected = chat.final("/tokenize gpt2 unhappiness", session)
    assert len(ran) == 1 and ran[0].data == expected.data  # the tool's own reply, shown in the chat
    assistant, tool_msg = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "tokenize", "arguments": '{"tokenizer": "gpt2", "text": "unhappiness"}'}
    assert tool_msg["tool_call_id"] == "call_abc123"
    assert json.loads(tool_msg["content"]) == json.loads(json.dumps(expected.data))  # its data went back
    last = replies[-1]
    assert last.data["tool_calls"] == [{"command": "/tokenize gpt2 unhappiness", "error": False}]
    assert "Ran for this answer: `/tokenize gpt2 unhappiness`" in last.text
    assert last.buttons[0] == "/tokenize gpt2 unhappiness"


def test_bad_tool_arguments_go_back_to_the_model_replayed_recording(tutor, session, passages):
    def handler(req):
        if not any(m["role"] == "tool" for m in req["messages"]):
            return stream([chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": "count", "arguments": '{"txt": "hi"}'}}]),
                           chunk(finish="tool_calls")])
        return stream(words("I could not count it [arch-attention step 3]."))
    with wire(handler) as (url, w):
        replies, _ = explain(url, passages, session, tools=list(tutor.registry.tools.values()))
    told = json.loads(w.requests[1]["messages"][-1]["content"])
    assert "has no parameter 'txt'" in told["error"]
    assert replies[-1].done and replies[-1].data["tool_calls"] == []


def test_a_model_cannot_make_a_tool_read_a_server_file_replayed_recording(tutor, session, passages):
    def handler(req):
        if not any(m["role"] == "tool" for m in req["messages"]):
            return stream([chunk(tool_calls=[{"index": 0, "id": "call_1", "type": "function", "function": {
                "name": "finetune", "arguments": '{"file": "/etc/passwd", "steps": 1}'}}]), chunk(finish="tool_calls")])
        return stream(words("Upload a file first [arch-attention step 3]."))
    with wire(handler) as (url, w):
        replies, _ = explain(url, passages, session, tools=list(tutor.registry.tools.values()))
    told = json.loads(w.requests[1]["messages"][-1]["content"])
    assert "only the learner can give one" in told["error"]
    assert replies[-1].data["tool_calls"] == [] and [r.done for r in replies].count(True) == 1  # nothing ran
    assert tutor.jobs.of(session.learner_id) == []  # no fine-tune job was started


def test_tool_rounds_are_bounded_replayed_recording(tutor, session, passages):
    def always_a_tool(req):
        if "tools" not in req:  # the last round offers no tools: the model must answer
            return stream(words("Here is my answer [arch-attention step 3]."))
        return stream([chunk(tool_calls=[{"index": 0, "id": f"call_{len(req['messages'])}", "type": "function",
                                          "function": {"name": "decode", "arguments": '{"tokenizer": "gpt2", "ids": ["464"]}'}}]),
                       chunk(finish="tool_calls")])
    with wire(always_a_tool) as (url, w):
        replies, _ = explain(url, passages, session, tools=list(tutor.registry.tools.values()), timeout=60)
    assert len(w.requests) == 4 and "tools" not in w.requests[-1]
    assert len(replies[-1].data["tool_calls"]) == 3 and replies[-1].data["answer"].startswith("Here is my answer")


def test_calls_in_one_round_are_bounded_replayed_recording(tutor, session, passages):
    def six_at_once(req):
        if any(m["role"] == "tool" for m in req["messages"]):
            return stream(words("Done [arch-attention step 3]."))
        return stream([chunk(tool_calls=[{"index": i, "id": f"call_{i}", "type": "function", "function": {
            "name": "decode", "arguments": f'{{"tokenizer": "gpt2", "ids": ["{464 + i}"]}}'}} for i in range(6)]),
            chunk(finish="tool_calls")])
    with wire(six_at_once) as (url, w):
        replies, _ = explain(url, passages, session, tools=list(tutor.registry.tools.values()), timeout=60)
    answers = [m for m in w.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in answers] == [f"call_{i}" for i in range(6)]
    assert [("Not run" in m["content"]) for m in answers] == [False] * 4 + [True] * 2
    assert len(replies[-1].data["tool_calls"]) == 4


def test_a_server_that_refuses_tools_is_asked_again_without(tutor, passages):
    # vLLM's answer when tools are sent but --enable-auto-tool-choice is not set (HTTP 400)
    refusal = Send(400, json.dumps({"object": "error", "message": '"auto" tool choice requires '
                   "--enable-auto-tool-choice and --tool-call-parser to be set", "type": "BadRequestError",
                   "param": None, "code": 400}).encode(), {"Content-Type": "application/json"})
    with wire(lambda req: refusal if "tools" in req else stream(words("Fine [arch-attention step 3].")
                                                                )) as (url, w):
        replies, _ = explain(url, passages, tools=list(tutor.registry.tools.values()))
    assert len(w.requests) == 2 and replies[-1].data["answer"] == "Fine [arch-attention step 3]."


# ---- failures: each a clear line, then the retrieval answer ---------------------------------------

def _fell_back(replies, kind: str, *phrases: str):
    last = replies[-1]
    assert last.done and not last.error
    assert last.data["explainer_error"]["kind"] == kind, last.data["explainer_error"]
    line = last.text.split("\n\n")[0]
    assert line.startswith("⚠️ ") and line.endswith("Here is the answer from the lessons instead.")
    for phrase in phrases:
        assert phrase in line, line
    assert last.text.endswith(FALLBACK.text) and last.buttons == FALLBACK.buttons
    assert last.data["covered"] and last.data["lesson"] == "arch-attention"
    return line


def test_server_down(passages):
    replies, took = explain(closed_port(), passages)
    _fell_back(replies, "unreachable", "cannot be reached", "TUTOR_LLM_URL")
    assert took < 5


def test_rate_limit_429_with_openai_error_body(passages):
    body = ("Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s.")
    with wire(lambda req: error(429, body, "requests", "rate_limit_exceeded", {"retry-after": "20"})) as (url, w):
        replies, took = explain(url, passages)
    _fell_back(replies, "rate_limit", "HTTP 429", "Rate limit reached", "wait 20 s")
    assert len(w.requests) == 1 and took < 3  # no hidden retries


def test_a_server_that_never_answers_times_out(passages):
    with wire(lambda req: Send(before=60)) as (url, _):
        replies, took = explain(url, passages, timeout=1.5)
    _fell_back(replies, "timeout", "did not answer in time", "1.5 s")
    assert 1.4 < took < 4


def test_a_stream_that_stalls_midway_times_out(passages):
    with wire(lambda req: stream(words("Each head")[:2], hang=60, done=False)) as (url, _):
        replies, took = explain(url, passages, timeout=1.5)
    assert any(not r.done for r in replies)  # it had started streaming
    _fell_back(replies, "timeout", "did not answer in time")
    assert took < 4


def test_a_slow_trickle_stops_at_the_time_limit(passages):
    with wire(lambda req: stream(words("word " * 200), gap=0.2)) as (url, _):
        replies, took = explain(url, passages, timeout=1.5)
    _fell_back(replies, "slow", "too slow", "1.5 s")
    assert 1.4 < took < 3


def test_a_reply_that_is_not_a_stream_is_malformed(passages):
    # a proxy or captive portal answering 200 with a web page
    page = Send(200, b"<html><body><h1>Welcome to the campus network</h1></body></html>",
                {"Content-Type": "text/html"})
    with wire(lambda req: page) as (url, _):
        replies, _ = explain(url, passages)
    _fell_back(replies, "malformed", "no answer in it")


def test_a_stream_line_that_is_not_json_is_malformed(passages):
    broken = Send(200, [b"data: {\"id\": \"chatcmpl-1\", \"choices\": [\n\n", b"data: [DONE]\n\n"],
                  {"Content-Type": "text/event-stream"})
    with wire(lambda req: broken) as (url, _):
        replies, _ = explain(url, passages)
    _fell_back(replies, "malformed", "cannot read")


def test_a_server_error_names_its_status(passages):
    with wire(lambda req: error(500, "The server had an error while processing your request.", "server_error",
                                None)) as (url, _):
        replies, _ = explain(url, passages)
    _fell_back(replies, "server_error", "HTTP 500", "had an error")


def test_a_wrong_model_name_says_what_to_check(passages):
    with wire(lambda req: error(404, "The model `gpt-5-nano` does not exist or you do not have access to it.",
                                "invalid_request_error", "model_not_found")) as (url, _):
        replies, _ = explain(url, passages)
    _fell_back(replies, "server_error", "HTTP 404", "TUTOR_LLM_MODEL")
