"""The conversation's figures from one run, for both halves of the question and request sets
(tests/data/conversation_*.yaml; only the tuning half was ever used to set weights and phrases):

    questions  top-1 and top-3 lesson, on-topic answered, off-topic declined
    requests   the right command, a clarifying question where the request is ambiguous
    latency    p50 / p95 of a free-question turn without an LLM against a plain /count turn,
               the two run alternately so that load on a shared machine hits both alike

    python -m bench.bench_conversation            # both halves, the figures only
    python -m bench.bench_conversation --misses   # and what the tuning half gets wrong (never the held-out)
    python -m bench.bench_conversation --no-latency
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor import chat, commands, intents  # noqa: E402
from tutor.context import Tutor  # noqa: E402
from tutor.settings import Settings  # noqa: E402

DATA = ROOT / "tests" / "data"


def questions(tutor: Tutor, items: list[dict], off_topic: list[str], misses: list | None = None) -> str:
    """The figures; `misses` (tuning half only) collects what went wrong, to read while tuning."""
    search = tutor.lesson_search
    ranked = search.rank_many([x["q"] for x in items], k=40)
    top1 = top3 = answered = 0
    for item, hits in zip(items, ranked):
        got = search.lessons_for(item["q"], 3, hits)
        top1 += got[:1] == [item["lesson"]]
        top3 += item["lesson"] in got
        answered += search.covered(hits, item["q"])
        if misses is not None and (got[:1] != [item["lesson"]] or not search.covered(hits, item["q"])):
            misses.append(f"  question {item['q']!r}: want {item['lesson']}, got {got} "
                          f"(score {hits[0].score:.3f}, covered {search.covered(hits, item['q'])})")
    declined = 0
    for q, h in zip(off_topic, search.rank_many(off_topic, k=8)):
        declined += not search.covered(h, q)
        if misses is not None and search.covered(h, q):
            misses.append(f"  off-topic answered {q!r}: {h[0].doc.lesson} score {h[0].score:.3f}")
    n = len(items)
    return (f"top-1 {top1 / n:6.1%}  top-3 {top3 / n:6.1%}  answered {answered}/{n}  "
            f"off-topic declined {declined}/{len(off_topic)}")


def requests(tutor: Tutor, items: list[dict], misses: list | None = None) -> str:
    names = intents.Names.build(tutor.registry, tutor.available_models())
    reg, tools = tutor.registry, tutor.registry.tools

    def full(line: str):
        try:
            call = commands.parse(line, tools, reg, 10**6)
        except commands.ToolError as e:  # a line the tool refuses is a wrong command, not a crash
            return "refused", str(e)
        return call.tool.name, {**{p.name: p.default for p in call.tool.params if not p.required}, **call.args}

    right = asked = 0
    plain = [r for r in items if "command" in r]
    vague = [r for r in items if r.get("clarify")]
    for r in plain:
        got = intents.interpret(r["say"], tools, names)
        ok = isinstance(got, intents.Run) and full(got.line) == full(r["command"])
        right += ok
        if misses is not None and not ok:
            misses.append(f"  request {r['say']!r}: want {r['command']}, got {got}")
    for r in vague:
        got = intents.interpret(r["say"], tools, names)
        asked += isinstance(got, intents.Ask)
        if misses is not None and not isinstance(got, intents.Ask):
            misses.append(f"  request {r['say']!r}: want a question, got {got}")
    return f"right command {right}/{len(plain)} ({right / len(plain):.1%})  clarifying question asked {asked}/{len(vague)}"


def latency(tutor: Tutor, questions: list[str], repeat: int = 3) -> str:
    session = tutor.session("bench")
    chat.final("/count The cat sat on the mat", session)  # warm both paths
    chat.final(questions[0], session)
    ask, count = [], []
    for _ in range(repeat):
        for q in questions:
            for fn, out in ((lambda: chat.final(q, session), ask),
                            (lambda: chat.final("/count The cat sat on the mat", session), count)):
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)

    def p(xs, q):
        return statistics.quantiles(xs, n=100)[q - 1] * 1000

    return (f"free question p50 {p(ask, 50):6.1f} ms  p95 {p(ask, 95):6.1f} ms | /count p50 {p(count, 50):6.1f} ms  "
            f"p95 {p(count, 95):6.1f} ms | ratio p50 {p(ask, 50) / p(count, 50):.1f}x  p95 {p(ask, 95) / p(count, 95):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--misses", action="store_true", help="list what the tuning half gets wrong")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency run")
    args = parser.parse_args()
    misses: list[str] | None = [] if args.misses else None
    tutor = Tutor(Settings(offline="yes"))
    qs = yaml.safe_load((DATA / "conversation_questions.yaml").read_text(encoding="utf-8"))
    rs = yaml.safe_load((DATA / "conversation_requests.yaml").read_text(encoding="utf-8"))
    t = time.perf_counter()
    search = tutor.lesson_search
    print(f"index: {len(search.docs)} steps, {len(search.chunk_of)} sentences embedded "
          f"({'MiniLM + BM25' if search.vectors is not None else 'BM25 only'}), {time.perf_counter() - t:.1f} s "
          "(embeddings from the disk cache after the first run)")
    for half in ("tuning", "held_out"):
        mine = misses if half == "tuning" else None  # the held-out half is counted, never read
        print(f"questions {half:8} ({len(qs[half])}): {questions(tutor, qs[half], qs['off_topic'][half], mine)}")
    for half in ("tuning", "held_out"):
        mine = misses if half == "tuning" else None
        print(f"requests  {half:8} ({len(rs[half])}): {requests(tutor, rs[half], mine)}")
    if misses:
        print("tuning half, wrong:", *misses, sep="\n")
    if not args.no_latency:
        print("latency:", latency(tutor, [x["q"] for x in qs["held_out"][::9]]))


if __name__ == "__main__":
    main()
