"""Free questions: retrieval accuracy on the question set, with floors, and honest refusals."""

from pathlib import Path

import pytest
import yaml

from tutor.lessons import load_curriculum
from tutor.lessons.search import LessonSearch

QUESTIONS = yaml.safe_load((Path(__file__).parent / "data" / "questions.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def search():
    return LessonSearch(load_curriculum())


def accuracy(search, questions):
    top1 = top3 = 0
    for item in questions:
        got = search.lessons_for(item["q"], 3)
        top1 += got[:1] == [item["lesson"]]
        top3 += item["lesson"] in got
    return top1 / len(questions), top3 / len(questions)


def test_question_set_is_big_and_points_at_real_lessons():
    ids = {l.id for l in load_curriculum().lessons}
    assert len(QUESTIONS["questions"]) >= 40
    assert {q["lesson"] for q in QUESTIONS["questions"]} <= ids
    assert len({q["lesson"] for q in QUESTIONS["questions"]}) >= 25  # most lessons are asked about


def test_accuracy_floors(search):
    top1, top3 = accuracy(search, QUESTIONS["questions"])
    print(f"top-1 {top1:.1%}, top-3 {top3:.1%} on {len(QUESTIONS['questions'])} questions")
    assert top1 >= 0.85
    assert top3 >= 0.95


def test_off_topic_questions_are_not_answered(search):
    for q in QUESTIONS["off_topic"]:
        reply = search.answer(q)
        assert reply.data["covered"] is False, q
        assert "don't cover" in reply.text


def test_on_topic_answers_say_where_they_come_from(search):
    for item in QUESTIONS["questions"][:10]:
        reply = search.answer(item["q"])
        assert reply.data["covered"], item["q"]
        lesson = search.cur.get(reply.data["lesson"])
        assert f"· {lesson.title}" in reply.text
        assert reply.buttons[-1] == f"lesson {lesson.id}"
        assert reply.buttons[:-1] == lesson.commands[:3]


@pytest.mark.parametrize("text", ["", "?", "the of and", "🙂🙂", "x" * 5000])
def test_odd_questions_do_not_crash(search, text):
    reply = search.answer(text)
    assert reply.data["covered"] in (True, False)
