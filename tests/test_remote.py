"""/generate on an OpenAI-compatible server (TUTOR_GENERATION_URL): a real `transformers serve`
on 127.0.0.1 (slow), and the clear answers when the server is not there (fast)."""

import uuid

import pytest

from conftest import ASSETS


def tutor_with(tmp_path, **settings):
    from tutor.context import Tutor
    from tutor.settings import Settings

    return Tutor(Settings(home=tmp_path / "home", assets_dir=ASSETS, offline="yes", **settings))


def ask(tutor, message):
    from tutor import chat

    return chat.final(message, tutor.session(uuid.uuid4().hex))


def test_a_server_that_does_not_answer_gives_a_clear_error_not_a_crash(tmp_path):
    from web_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: the client's real connection error
    reply = ask(tutor_with(tmp_path, generation_url=url, generation_model="m"), "/generate --greedy The cat")
    assert reply.error and url in reply.text and "TUTOR_GENERATION_URL" in reply.text


def test_the_limit_on_new_tokens_holds_for_the_server_too(tmp_path):
    reply = ask(tutor_with(tmp_path, generation_url="http://127.0.0.1:9/v1", max_new_tokens=8),
                "/generate --max-tokens 9 The cat")
    assert reply.error and "limit of 8" in reply.text


@pytest.fixture(scope="module")
def served():
    from llm_server import serving
    from tutor.assets import smollm2_folder

    with serving(smollm2_folder(ASSETS)) as url:
        yield url


@pytest.mark.slow
def test_generate_on_transformers_serve_gives_the_local_greedy_text(served, tmp_path, tutor):
    from tutor.remote import Server

    prompt = "The capital of France is"
    local = ask(tutor, f"/generate --greedy --max-tokens 8 {prompt}")
    remote = ask(tutor_with(tmp_path, generation_url=served), f"/generate --greedy --max-tokens 8 {prompt}")
    assert not remote.error, remote.text
    assert remote.data["server"] == served and remote.data["model"] == Server(served).model
    assert remote.data["text"] == local.data["text"]  # greedy: the same model gives the same tokens
    assert remote.data["stop_reason"] == local.data["stop_reason"]
    assert "/generate --step" in remote.text  # says what stays local


@pytest.mark.slow
def test_chat_on_the_server_streams_text_without_loading_a_model_here(served, tmp_path):
    tutor = tutor_with(tmp_path, generation_url=served)
    reply = ask(tutor, "/generate --chat --greedy --max-tokens 12 What is a token?")
    assert not reply.error, reply.text
    assert reply.data["text"].strip() and len(reply.spans) >= 1
    assert tutor.cache.loads == 0  # no model was loaded on this machine: the server generated


def test_logprobs_in_the_openai_schema_become_probabilities_and_alternatives():
    """Chunks shaped as vLLM streams them, parsed by the openai package's own types."""
    import math

    from openai.types import Completion
    from openai.types.chat import ChatCompletionChunk

    from tutor.remote import _chat_pieces, _completion_pieces

    chat = ChatCompletionChunk.model_validate({
        "id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"content": " Paris"}, "finish_reason": None, "logprobs": {"content": [
            {"token": " Paris", "logprob": math.log(0.8), "bytes": None,
             "top_logprobs": [{"token": " Paris", "logprob": math.log(0.8), "bytes": None},
                              {"token": " Lyon", "logprob": math.log(0.1), "bytes": None}]}]}}]})
    (piece,) = _chat_pieces(chat.choices[0])
    assert piece.text == " Paris" and piece.p == pytest.approx(0.8)
    assert [t for t, _ in piece.top] == [" Paris", " Lyon"] and piece.top[1][1] == pytest.approx(0.1)
    legacy = Completion.model_validate({
        "id": "2", "object": "text_completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "text": " Paris", "finish_reason": "length", "logprobs": {
            "tokens": [" Par", "is"], "token_logprobs": [math.log(0.5), math.log(0.9)],
            "top_logprobs": [{" Par": math.log(0.5), " Lyon": math.log(0.2)}, {"is": math.log(0.9)}],
            "text_offset": [0, 4]}}]})
    pieces = list(_completion_pieces(legacy.choices[0]))
    assert [p.text for p in pieces] == [" Par", "is"] and pieces[1].p == pytest.approx(0.9)
    assert pieces[0].top[0][0] == " Par" and pieces[0].top[1] == (" Lyon", pytest.approx(0.2))
    # a server that sends no logprobs (transformers serve): text only, no probability
    bare = Completion.model_validate({"id": "3", "object": "text_completion", "created": 0, "model": "m",
                                      "choices": [{"index": 0, "text": " Paris", "finish_reason": "length"}]})
    assert [(p.text, p.p) for p in _completion_pieces(bare.choices[0])] == [(" Paris", None)]
