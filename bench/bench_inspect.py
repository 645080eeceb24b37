"""What looking inside costs (P8): /inspect --order and /lens on smollm2-135m for a 32-token
prompt, each as the page gets it (the whole tool, and for /lens its figure rendered to the PNG
the page shows), against one plain forward pass of the same model in the same process.

    python bench/bench_inspect.py            # best of 5
    python bench/bench_inspect.py --quick    # best of 3

Steps run interleaved, best of N, under the default allocator and the same torch threads
(--threads, default 1: on a shared 2-core machine two OpenMP threads wait on each other).
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tutor, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from report import Report, arguments  # noqa: E402

MODEL, TOKENS = "smollm2-135m", 32


def best_of_interleaved(fns: dict, repeat: int, device: str) -> dict[str, float]:
    """name -> best wall seconds, the steps run alternately so a busy moment hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    args = arguments(__doc__, **{"--threads": {"type": int, "default": 1}}).parse_args()
    torch.set_num_threads(args.threads)
    from tutor import chat
    from tutor.anatomy import recording
    from tutor.context import Tutor
    from tutor.web import reply_messages

    rep = Report("inspect", args.out)
    tutor = Tutor()  # the usual data dir: assets fetched and converted once
    session = tutor.session("bench")
    figures = Path(tempfile.mkdtemp(prefix="bench-figures-"))
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

    def tool(command: str):
        reply = chat.final(command, session)
        assert not reply.error, reply.text[:300]
        return reply

    def lens_page() -> None:  # the tool, then its figure drawn to the PNG the page serves
        reply_messages(tool(f"/lens {MODEL} {prompt}"), figures)

    steps = {"plain forward": plain, "forward + hooks on every module": hooked,
             "/inspect --order": lambda: tool(f"/inspect {MODEL} --order {prompt}"),
             "/lens": lambda: tool(f"/lens {MODEL} {prompt}"), "/lens with figure": lens_page}
    for fn in steps.values():  # warm up: first calls pay for lazy imports and allocations
        fn()
    repeat = 3 if args.quick else 5
    best = best_of_interleaved(steps, repeat, device)
    print(f"{MODEL} on {device}, {n}-token prompt, {torch.get_num_threads()} torch thread(s), best of {repeat}")
    base = best["plain forward"]
    rep.note("plain forward", f"{base * 1e3:.1f} ms")
    rep.note("forward + hooks on every module", f"{best['forward + hooks on every module'] / base:.2f}x")
    rep.note("/lens without its figure", f"{best['/lens'] / base:.2f}x")
    for name in ("/inspect --order", "/lens with figure"):
        rep.figure("P8", f"{name} vs a plain forward", best[name] / base, "<= 1.5",
                   detail=f"{best[name] * 1e3:.0f} ms vs {base * 1e3:.0f} ms; {n} tokens")


if __name__ == "__main__":
    main()
