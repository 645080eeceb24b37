"""The conversation: plain requests run tools (the request set's tuning half, with a floor), follow-ups
from the session's memory, one turn pipeline, and the explainer seam. The held-out half is read
only by bench/bench_conversation.py."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from tutor import Reply, chat, commands, explainer, intents
from tutor.tools import ToolError
from tutor.context import Tutor
from tutor.plugins import build_registry
from tutor.settings import Settings

DATA = Path(__file__).parent / "data"
REQUESTS = yaml.safe_load((DATA / "conversation_requests.yaml").read_text(encoding="utf-8"))
QUESTIONS = yaml.safe_load((DATA / "conversation_questions.yaml").read_text(encoding="utf-8"))


def same_call(tutor, a: str, b: str) -> bool:
    """Two command lines mean the same call: same tool, same arguments with defaults filled in."""
    def full(line):
        call = commands.parse(line, tutor.registry.tools, tutor.registry, 10**6)
        return call.tool.name, {**{p.name: p.default for p in call.tool.params if not p.required}, **call.args}
    return full(a) == full(b)


@pytest.fixture
def names(tutor):
    return intents.Names.build(tutor.registry, tutor.available_models())


def test_request_set_is_big_split_and_covers_every_tool(tutor):
    tools = set(tutor.registry.tools)
    for half in ("tuning", "held_out"):
        used = {commands.parse(r["command"], tutor.registry.tools, tutor.registry, 10**6).tool.name
                for r in REQUESTS[half] if "command" in r}
        assert used == tools, (half, tools - used)
        assert any(r.get("clarify") for r in REQUESTS[half])
    assert len(REQUESTS["tuning"]) + len(REQUESTS["held_out"]) >= 60


def test_requests_of_the_tuning_half_run_the_right_command_or_ask(tutor, names):
    right, wrong = 0, []
    for r in REQUESTS["tuning"]:
        got = intents.interpret(r["say"], tutor.registry.tools, names)
        ok = isinstance(got, intents.Ask) if r.get("clarify") else \
            isinstance(got, intents.Run) and same_call(tutor, got.line, r["command"])
        right += ok
        wrong += [] if ok else [(r["say"], got)]
    assert right / len(REQUESTS["tuning"]) >= 0.95, wrong


# Questions of the set that quote a text and name a tokenizer: running the tool is the better
# answer (the real tokens, with the lesson's point beside them), as "how does bert tokenize 'playing'?".
RUN_A_TOOL = {"how does gpt2 split 'the cat unhappily'?"}


def test_free_questions_and_off_topic_are_not_taken_for_requests(tutor, names):
    for q in [x["q"] for x in QUESTIONS["tuning"] if x["q"] not in RUN_A_TOOL] + QUESTIONS["off_topic"]["tuning"]:
        assert intents.interpret(q, tutor.registry.tools, names) is None, q


def test_a_plain_request_shows_its_command_and_the_tools_own_data(ask):
    reply = ask("tokenize unhappiness with bert")
    typed = ask("/tokenize bert-base-uncased unhappiness")
    assert reply.data["command"] == "/tokenize bert-base-uncased unhappiness"
    assert reply.buttons[0] == reply.data["command"] and reply.text.startswith("▶ `/tokenize bert-base-uncased")
    assert {k: v for k, v in reply.data.items() if k != "command"} == typed.data


def test_an_ambiguous_request_asks_one_question_with_runnable_buttons(tutor, ask):
    reply = ask("show me layer 3's attention")
    assert reply.data["clarify"] and reply.text.startswith("Which model?")
    for line in reply.buttons:
        call = commands.parse(line, tutor.registry.tools, tutor.registry, 10**6)
        assert call.tool.name == "attention" and call.args["layer"] == 3
    llama = ask("count tokens of 'hello' with llama")  # a model family, not a tokenizer: never a silent guess
    assert llama.data["clarify"] and "not a tokenizer" in llama.text


def test_follow_ups_after_a_tokenize(tutor, ask):
    counts = [ask("/tokenize gpt2 unhappiness").data["count"]]
    bert = ask("now with bert")
    assert bert.data["command"] == "/tokenize bert-base-uncased unhappiness" and bert.data["tokenizer"] == "bert-base-uncased"
    o200k = ask("and o200k?")
    assert o200k.data["command"] == "/tokenize o200k_base unhappiness"
    counts += [bert.data["count"], o200k.data["count"]]
    compared = ask("compare them")
    assert same_call(tutor, compared.data["command"],
                     "/compare --tokenizers gpt2,bert-base-uncased,o200k_base unhappiness")
    assert list(compared.data["counts"].items()) == list(zip(["gpt2", "bert-base-uncased", "o200k_base"], counts))
    assert ask("again").data["command"] == compared.data["command"]


def test_follow_ups_change_the_numbers_of_the_last_call(tutor, ask):
    ask("/attention distilgpt2-arch --layer 0 The cat sat")
    layer = ask("what about layer 3?")
    assert same_call(tutor, layer.data["command"], "/attention distilgpt2-arch --layer 3 The cat sat")
    head = ask("head 5 only")
    assert same_call(tutor, head.data["command"], "/attention distilgpt2-arch --layer 3 --head 5 The cat sat")


def test_follow_ups_after_an_answer(ask):
    first = ask("what is weight tying?")
    assert first.data["covered"] and first.data["lesson"] == "arch-output"
    why = ask("why?")
    assert why.data["lesson"] == "arch-output" and why.data["step"] != first.data["step"]
    assert why.text.startswith("The reasoning, from the same lesson")
    assert "**Quiz:**" not in why.text  # a reason is another explanation step, not a quiz
    shown = ask("show me")
    assert shown.data["command"].startswith("/") and not shown.error
    ask("what is weight tying?")
    simpler = ask("say it more simply")
    assert simpler.data["simpler"] and "In one line" in simpler.text


def test_again_without_a_command_repeats_the_lesson_step(ask):
    ask("start")
    assert ask("again").data["step"] == 1


def test_a_third_party_tool_is_reachable_in_plain_words(tutor):
    path = Path(__file__).parents[1] / "examples" / "tutor-bytes-plugin" / "tutor_bytes.py"
    spec = importlib.util.spec_from_file_location("tutor_bytes_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t = Tutor(tutor.settings, build_registry(extra=[("bytes", module)]))
    reply = chat.final("show the utf-8 bytes of 'héllo'", t.session())
    assert reply.data["command"] == "/bytes héllo" and reply.data["bytes"] == 6


def test_the_free_question_turn_streams_a_configured_explainer(monkeypatch, tutor, session):
    """The seam (tutor/explainer.py): the pipeline hands an explainer the retrieved passages, the
    learner's recent tool data, the retrieval reply as fallback and a way to run commands."""
    seen = {}

    class Recorder:
        label = "seam test"

        def explain(self, question, passages, recent, fallback, run_command):
            seen.update(question=question, passages=passages, recent=recent, fallback=fallback)
            ran = list(run_command("/count gpt2 hello"))
            yield Reply(text="thinking", done=False)
            yield Reply(text=f"explained with {ran[-1].data['counts']['gpt2']} token", data={"ran": ran[-1].data})

    monkeypatch.setattr(session.tutor, "explainer", Recorder())
    chat.final("/tokenize gpt2 hello", session)
    replies = list(chat.respond("what is attention?", session))
    assert [r.done for r in replies] == [False, True] and replies[-1].text == "explained with 1 token"
    assert seen["passages"][0].lesson_id == "arch-attention" and seen["passages"][0].text
    assert seen["recent"][-1][0] == "/tokenize gpt2 hello" and seen["recent"][-1][1]["count"] == 1
    assert seen["fallback"].data["covered"] and seen["fallback"].data["lesson"] == "arch-attention"
    assert replies[-1].data["ran"]["command"] == "/count gpt2 hello"  # ran as if typed, shown as a request
    off = chat.final("what's the weather like today?", session)  # declined, never handed to the explainer
    assert off.data["covered"] is False and seen["question"] == "what is attention?"


def test_the_default_has_no_explainer():
    assert explainer.explainer_for(Settings()) is None


def test_the_conversation_over_a_real_server(tutor):
    """The same pipeline behind the page's /ask API (what MCP clients call too), on 127.0.0.1."""
    from gradio_client import Client

    from tutor import web
    from web_server import running

    with running(web.server_app(Tutor(tutor.settings, registry=tutor.registry))) as url:
        client = Client(url + "/", verbose=False)
        first = client.predict("tokenize unhappiness with bert", "", api_name="/ask")
        assert first["data"]["command"] == "/tokenize bert-base-uncased unhappiness" and not first["error"]
        token = first["learner"]  # the server names the learner; the client only hands its token back
        follow = client.predict("now with gpt2", token, api_name="/ask")
        assert follow["data"]["command"] == "/tokenize gpt2 unhappiness"
        stranger = Client(url + "/", verbose=False)  # another learner (no cookie, no token) has no memory
        other = stranger.predict("now with gpt2", "", api_name="/ask")
        assert "command" not in other["data"]


def test_a_free_question_with_a_lone_surrogate_is_answered_clearly_where_it_is_retrieved(tutor, ask):
    """The MiniLM tokenizer raises a bare TypeError on a lone surrogate; the search says what is
    wrong instead. The chat door lets it through, so /tokenize still shows one as it is."""
    reply = ask("what is \ud800 attention?")
    assert reply.error and "lone surrogate code point U+D800" in reply.text and "Your question" in reply.text
    with pytest.raises(ToolError, match=r"U\+DC00 at character 1 "):
        tutor.lesson_search.rank("\udc00 why divide by sqrt(d_k)?")
    shown = ask("/tokenize gpt2 a\ud800b")
    assert not shown.error and "surrogate" in shown.text, shown.text


def test_a_quiz_never_outranks_the_explanation_it_quizzes_on_and_follows_it(tutor):
    q = "1,000 sequences, batch size 4, gradient accumulation 5: how many optimizer steps per epoch?"
    hits = tutor.lesson_search.rank(q, k=3)
    assert [(h.doc.kind, h.doc.lesson) for h in hits[:2]] == [("text", "train-batches-epochs"), ("quiz", "train-batches-epochs")]
    assert hits[0].score >= hits[1].score
    reply = tutor.lesson_search.answer(q)
    assert reply.data["step"] == hits[0].doc.step and "quizzes on it" in reply.text and "**Answer:** 50" in reply.text


def test_off_topic_tuning_questions_are_all_declined_and_on_topic_ones_answered(tutor):
    search = tutor.lesson_search
    off = QUESTIONS["off_topic"]["tuning"]
    assert not [q for q, h in zip(off, search.rank_many(off, k=8)) if search.covered(h, q)]
    on = [x["q"] for x in QUESTIONS["tuning"]]
    assert not [q for q, h in zip(on, search.rank_many(on, k=8)) if not search.covered(h, q)]
