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
