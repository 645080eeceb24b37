"""Benchmark: the time to the first streamed token of an explanation, through the tutor's
explainer against the plain `openai` client streaming the same messages, both from one real
`transformers serve` (the converted SmolLM2 folder, CPU) in the same run.

    python bench/bench_explainer.py            (TUTOR_ASSETS_DIR as for the app)

Prints, best of REPEATS alternating runs (other processes share the machine):
  1. first token through the explainer (ServerExplainer.explain, up to its first partial reply);
  2. first token through the openai client alone, same messages and max_tokens;
  3. their ratio (the explainer's own cost: prompt building, parsing, replies; target <= 1.05).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import openai  # noqa: E402

from llm_server import serving  # noqa: E402
from timing import interleaved  # noqa: E402
from tutor.assets import smollm2_folder  # noqa: E402
from tutor.context import Tutor  # noqa: E402
from tutor.explain_server import ServerExplainer  # noqa: E402
from tutor.explainer import Passage, prompt_messages  # noqa: E402
from tutor.settings import Settings  # noqa: E402
from tutor.tools import Reply  # noqa: E402

QUESTION = "Why are the attention scores divided by 8?"
MAX_TOKENS = 8
REPEATS = 3


def main() -> None:
    settings = Settings(offline="yes")
    tutor = Tutor(settings)
    lesson = tutor.curriculum.get("arch-attention")
    passages = [Passage(lesson.id, lesson.title, 3, lesson.steps[2].text)]
    with tempfile.TemporaryDirectory() as work:
        folder = smollm2_folder(settings.assets)
        with serving(folder, log=Path(work) / "serve.log") as url:
            explainer = ServerExplainer(url, str(folder), None, timeout=600, max_tokens=MAX_TOKENS)
            client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=600)
            messages = prompt_messages(QUESTION, passages, [])

            def through_explainer() -> None:
                for reply in explainer.explain(QUESTION, passages, [], Reply(text="fallback"), lambda line: iter([])):
                    assert "explainer_error" not in reply.data, reply.data
                    if not reply.done:
                        return  # the first streamed token is on the page

            def through_client() -> None:
                with client.chat.completions.create(model=str(folder), messages=messages, stream=True,
                                                    max_tokens=MAX_TOKENS) as stream:
                    for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            return

            through_client()  # warm: the server loads the model on the first request
            ours, peer = interleaved(through_explainer, through_client, REPEATS)
    print(f"transformers serve, SmolLM2-135M on {os.cpu_count()} CPU cores, prompt of {len(messages[0]['content'])} "
          f"characters, best of {REPEATS}:")
    print(f"  first streamed token through the explainer: {ours:.2f} s")
    print(f"  first streamed token through the openai client alone: {peer:.2f} s")
    print(f"  ratio explainer / client: {ours / peer:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    t = time.monotonic()
    main()
    print(f"(benchmark took {time.monotonic() - t:.0f} s)")
