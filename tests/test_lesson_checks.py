"""Every check step of the curriculum, run against the real tools: a lesson that states a number
or a split the tools contradict fails here. Checks that load a real model or train one are marked slow."""

import pytest

from tutor.lessons import load_curriculum
from tutor.lessons.checks import run_check


# real weights, or training (gpt2-arch also matches distilgpt2-arch)
MODEL_WORDS = ("smollm2-135m", "minilm-l6", "gpt2-arch", "/finetune")


def _cases():
    for lesson in load_curriculum().lessons:
        for i, step in enumerate(lesson.steps, 1):
            if step.check:
                slow = any(w in step.check.command for w in MODEL_WORDS)
                yield pytest.param(lesson.id, step.check, id=f"{lesson.id}-step{i}",
                                   marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("lesson_id,check", list(_cases()))
def test_check(tutor, lesson_id, check):
    ok, details, reply = run_check(check, tutor.session(f"check-{lesson_id}"))
    assert ok, f"{lesson_id}: {check.claim}\n" + "\n".join(details)
