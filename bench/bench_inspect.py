"""What looking inside costs: /inspect --order and /lens on smollm2-135m for a 32-token prompt,
against one plain forward pass of the same model in the same process. Prints ratios from one run.

    python bench/bench_inspect.py

Times are the best of several interleaved runs, as wall time and as this process's CPU time
(the steadier figure on a busy shared machine). Peak memory is what each step adds above the
loaded model: torch's peak allocation on CUDA; on CPU the process's peak resident memory, sampled
every millisecond, with glibc told to hand large blocks straight back to the system (the script
restarts itself with MALLOC_MMAP_THRESHOLD_ set) so that resident memory follows live tensors.
"""

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tutor, not an installed one

import torch  # noqa: E402

from tutor import chat  # noqa: E402
from tutor.anatomy import recording  # noqa: E402
from tutor.context import Tutor  # noqa: E402

MODEL, TOKENS, REPEAT = "smollm2-135m", 32, 3


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_added(fn, device: str) -> int:
    """Bytes of memory `fn` needs above what is already in use, at its peak."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak[0], rss()) - base)


def best_of_interleaved(fns: dict, device: str) -> dict[str, tuple[float, float]]:
    """name -> (best wall seconds, best CPU seconds), the steps run alternately."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(REPEAT):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (min(w for w, _ in t), min(c for _, c in t)) for name, t in times.items()}


def main() -> None:
    tutor = Tutor()  # the usual data dir: assets fetched and converted once
    session = tutor.session("bench")
    with tutor.model(MODEL) as lm:
        ids = lm.tokenizer("The quick brown fox jumps over the lazy dog. " * 8)["input_ids"][:TOKENS]
        prompt = lm.tokenizer.decode(ids)
        inputs = {k: v.to(lm.device) for k, v in lm.tokenizer(prompt, return_tensors="pt").items()}
        n, device, model = inputs["input_ids"].shape[1], lm.device, lm.model

    def plain() -> None:
        with tutor.model(MODEL), torch.inference_mode():
            model(**inputs)

    def hooked() -> None:  # the forward pass /inspect --order runs: a hook on every module
        with tutor.model(MODEL), recording(model), torch.inference_mode():
            model(**inputs)

    def order() -> None:
        assert not chat.final(f"/inspect {MODEL} --order {prompt}", session).error

    def lens() -> None:
        assert not chat.final(f"/lens {MODEL} {prompt}", session).error

    steps = {"plain forward": plain, "forward + hooks on every module": hooked,
             "/inspect --order (whole tool)": order, "/lens (whole tool)": lens}
    for fn in steps.values():  # warm up: first calls pay for lazy imports and allocations
        fn()
    best = best_of_interleaved(steps, device)
    print(f"{MODEL} on {device}, {n}-token prompt, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"best of {REPEAT}")
    wall0, cpu0 = best["plain forward"]
    for name, (wall, cpu) in best.items():
        memory = peak_added(steps[name], device)
        print(f"  {name:32s} wall {wall * 1000:8.1f} ms (ratio {wall / wall0:5.2f})   "
              f"CPU {cpu * 1000:8.1f} ms (ratio {cpu / cpu0:5.2f})   peak memory added {memory / 2**20:7.1f} MiB")


if __name__ == "__main__":
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # see the docstring: make RSS follow live tensors
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 16)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    main()
