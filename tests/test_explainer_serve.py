"""The explainer against real models (slow): `transformers serve` on 127.0.0.1 serving the
converted SmolLM2 folder, and TUTOR_LLM=local through the model cache. A 135M model writes
fluent but often wrong English, so these tests check the mechanics a learner relies on (a
stream, the label, the sources, the grounding passage), never the model's facts."""

from __future__ import annotations

import time

import pytest

from conftest import ASSETS
from llm_server import serving
from tutor.assets import smollm2_folder
from tutor.explain_server import ServerExplainer
from tutor.explainer import Passage, explainer_for
from tutor.settings import Settings
from tutor.tools import Reply

pytestmark = pytest.mark.slow

QUESTION = "Why are the attention scores divided by 8?"
FALLBACK = Reply(text="(the retrieval answer)", data={"covered": True, "lesson": "arch-attention", "step": 3})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    folder = smollm2_folder(ASSETS)
    with serving(folder, log=work / "serve.log") as url:
        yield url, folder


def _passages(tutor) -> list[Passage]:
    lesson = tutor.curriculum.get("arch-attention")
    return [Passage(lesson.id, lesson.title, 3, lesson.steps[2].text)]


def _stream(explainer, tutor) -> tuple[list[Reply], float]:
    start, first, replies = time.monotonic(), None, []
    for r in explainer.explain(QUESTION, _passages(tutor), [], FALLBACK, lambda line: iter([])):
        if first is None and not r.done:
            first = time.monotonic() - start
        replies.append(r)
    return replies, first


def _check_explanation(replies: list[Reply], model: str, tutor) -> None:
    *partials, last = replies
    assert "explainer_error" not in last.data, last.data.get("explainer_error")
    assert len(partials) >= 2 and all(not r.done for r in partials)
    assert len(partials[-1].text) > len(partials[0].text)  # it streamed, growing
    assert last.done and not last.error and last.data["answer"]
    assert last.data["explainer"]["model"] == model and f"written by {model.rsplit('/', 1)[-1]}" in last.text
    assert "**Sources:**" in last.text and "[arch-attention step 3]" in last.text
    assert _passages(tutor)[0].text.strip().splitlines()[0][:60] in last.text  # the grounding passage, quoted under the answer
    assert last.data["covered"] and last.data["lesson"] == "arch-attention"


def test_transformers_serve_streams_a_cited_explanation(tutor, served):
    url, folder = served
    # no TUTOR_LLM_MODEL: the explainer takes the model the server lists
    explainer = ServerExplainer(url, None, None, timeout=600, max_tokens=48)
    replies, first = _stream(explainer, tutor)
    print(f"\ntransformers serve: first streamed token after {first:.1f} s; answer: {replies[-1].data.get('answer')!r}")
    _check_explanation(replies, str(folder), tutor)


def test_local_smollm2_is_labelled_as_often_wrong(tutor):
    explainer = explainer_for(Settings(home=tutor.settings.home, assets_dir=ASSETS, offline="yes", llm="local",
                                       llm_timeout=600), tutor)
    explainer.max_new_tokens = 48
    replies, first = _stream(explainer, tutor)
    print(f"\nlocal SmolLM2: first streamed token after {first:.1f} s")
    *_, last = replies
    assert "135M model that is often wrong" in last.text
    _check_explanation(replies, "SmolLM2-135M-Instruct", tutor)
