"""Lesson figures from one run: load + validation time of the whole curriculum (against a bare
yaml.safe_load of the same files), and free-question retrieval accuracy (top-1, top-3) on
tests/data/questions.yaml: our BM25 search against dense retrieval with the offline MiniLM encoder.

    python bench/bench_lessons.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.context import Tutor  # noqa: E402
from tutor.lessons import load_curriculum  # noqa: E402
from tutor.lessons.checks import validate  # noqa: E402
from tutor.plugins import builtin_dir  # noqa: E402
from tutor.lessons.search import LessonSearch, passages  # noqa: E402
from tutor.settings import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from timing import best  # noqa: E402


def accuracy(rank, questions) -> tuple[float, float, float]:
    top1 = top3 = 0
    t = time.perf_counter()
    for item in questions:
        got = rank(item["q"])
        top1 += got[:1] == [item["lesson"]]
        top3 += item["lesson"] in got[:3]
    return top1 / len(questions), top3 / len(questions), (time.perf_counter() - t) / len(questions)


def minilm_ranker(tutor: Tutor, cur):
    """Dense peer: mean-pooled all-MiniLM-L6-v2 embeddings, cosine similarity, best passage per lesson."""
    import torch

    ps = passages(cur)
    heads = {l.id: f"{l.title}. {l.summary}" for l in cur.lessons}

    def embed(texts):
        with tutor.model("minilm-l6", device="cpu") as lm:
            batch = lm.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.no_grad():
                out = lm.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            vec = (out * mask).sum(1) / mask.sum(1)
            return torch.nn.functional.normalize(vec, dim=-1)

    t = time.perf_counter()
    matrix = torch.cat([embed([f"{heads[p.lesson]} {p.text}" for p in ps[i:i + 64]]) for i in range(0, len(ps), 64)])
    build = time.perf_counter() - t

    def rank(question):
        scores = (matrix @ embed([question])[0]).tolist()
        seen = []
        for i in sorted(range(len(ps)), key=lambda i: -scores[i]):
            if ps[i].lesson not in seen:
                seen.append(ps[i].lesson)
            if len(seen) == 3:
                break
        return seen

    return rank, build


def main() -> None:
    tutor = Tutor(Settings(offline="yes"))
    files = sorted(builtin_dir("lessons").glob("*.yaml"))
    pure = best(lambda: [yaml.safe_load(f.read_text(encoding="utf-8")) for f in files])
    fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    bare = best(lambda: [yaml.load(f.read_text(encoding="utf-8"), Loader=fast) for f in files])
    load = best(lambda: load_curriculum(tutor.registry))
    full = best(lambda: validate(tutor.registry))
    cur = load_curriculum(tutor.registry)
    steps = sum(len(l.steps) for l in cur.lessons)
    print(f"curriculum: {len(cur.lessons)} lessons, {steps} steps, {sum(len(l.checks) for l in cur.lessons)} checks")
    print(f"yaml.safe_load (pure Python): {pure * 1000:7.1f} ms")
    print(f"yaml.load, {fast.__name__} only: {bare * 1000:7.1f} ms  (the peer)")
    print(f"load (strict models+lines): {load * 1000:7.1f} ms  ({load / bare:.2f}x bare C YAML)")
    print(f"load + validate (commands): {full * 1000:7.1f} ms  ({full / bare:.2f}x bare C YAML)")

    questions = yaml.safe_load((ROOT / "tests" / "data" / "questions.yaml").read_text(encoding="utf-8"))
    t = time.perf_counter()
    search = LessonSearch(cur)
    index_s = time.perf_counter() - t
    b1, b3, b_lat = accuracy(lambda q: search.lessons_for(q, 3), questions["questions"])
    off = sum(not search.answer(q).data["covered"] for q in questions["off_topic"])
    print(f"\nquestions: {len(questions['questions'])} on topic, {len(questions['off_topic'])} off topic")
    print(f"BM25 (bm25s):  top-1 {b1:.1%}  top-3 {b3:.1%}  index {index_s * 1000:.0f} ms  "
          f"{b_lat * 1000:.2f} ms/question; off-topic refused {off}/{len(questions['off_topic'])}")
    try:
        rank, build = minilm_ranker(tutor, cur)
        m1, m3, m_lat = accuracy(rank, questions["questions"])
        print(f"MiniLM dense:  top-1 {m1:.1%}  top-3 {m3:.1%}  index {build * 1000:.0f} ms  "
              f"{m_lat * 1000:.2f} ms/question")
        print(f"ratio BM25/MiniLM: top-1 {b1 / m1:.2f}x, latency {b_lat / m_lat:.3f}x")
    except Exception as e:  # the MiniLM asset may be unavailable offline
        print(f"MiniLM peer skipped: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
