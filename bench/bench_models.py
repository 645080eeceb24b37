"""Model cache figures for SmolLM2-135M, in one process:

1. cold load from the GGUF (transformers' own gguf_file path: dequantises every tensor)
   vs cold load from tutor's converted safetensors folder (through the cache: the real path);
2. a cache hit (the model already loaded);
3. 20 threads asking for the same unloaded model at once: loads counted (must be 1).

    python bench/bench_models.py            # uses TUTOR_ASSETS_DIR or the data dir's assets
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, arguments  # noqa: E402

from tutor.assets import SMOLLM2_GGUF, package_file, smollm2_folder  # noqa: E402
from tutor.context import Tutor  # noqa: E402
from tutor.settings import Settings  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    args = arguments(__doc__).parse_args()
    rep = Report("models", args.out)
    settings = Settings(offline="yes", device="cpu")
    smollm2_folder(settings.assets)  # the one-off conversion is not what we measure
    gguf = package_file(SMOLLM2_GGUF, settings.assets)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    def from_gguf():
        return (AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name),
                AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))

    _, gguf_s = timed(from_gguf)

    tutor = Tutor(settings)

    def from_folder():
        with tutor.model("smollm2-135m") as lm:
            return lm

    _, folder_s = timed(from_folder)
    print(f"cold load from the GGUF (transformers gguf_file):   {gguf_s:7.2f} s")
    print(f"cold load from the converted folder (tutor cache):  {folder_s:7.2f} s")
    rep.figure("P6", "cold load: GGUF vs converted folder", gguf_s / folder_s, ">= 5",
               detail=f"{gguf_s:.1f} vs {folder_s:.1f} s")

    hits = []
    for _ in range(200 if args.quick else 2000):
        _, s = timed(from_folder)
        hits.append(s)
    print(f"cache hit (median)        :                         {statistics.median(hits) * 1e6:7.1f} us")
    print(f"  ratio cold folder load / cache hit:               {folder_s / statistics.median(hits):7.0f}x")

    fresh = Tutor(settings)  # nothing loaded yet
    spec = fresh.registry.lookup("models", "smollm2-135m")
    calls, real_load = [], spec.load
    spec.load = lambda req: (calls.append(1), real_load(req))[1]  # count the loads that really run
    barrier, models = threading.Barrier(20), []

    def learner():
        barrier.wait()
        with fresh.model("smollm2-135m") as lm:
            models.append(id(lm.model))

    threads = [threading.Thread(target=learner) for _ in range(20)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    spec.load = real_load
    print(f"20 threads asking for smollm2-135m at once:         {len(calls)} load(s) ran, "
          f"{len(set(models))} distinct model object(s), {wall:.2f} s wall")
    rep.figure("P6", "loads when 20 threads ask at once", float(len(calls)), "<= 1", unit=" load(s)",
               detail=f"{len(set(models))} distinct model object(s), {wall:.2f} s wall")
    assert len(calls) == 1 and fresh.cache.loads == 1 and len(set(models)) == 1


if __name__ == "__main__":
    main()
