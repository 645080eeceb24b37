"""What looking inside costs (P8): /inspect --order and /lens on smollm2-135m for a 32-token
prompt, each as the page gets it (the whole tool, and for /lens the chart turned into what the
page shows: reply_messages, which writes its HTML table), against one plain forward pass of the
same model on the same prompt through transformers, in the same process.

    python bench/bench_inspect.py            # best of 9
    python bench/bench_inspect.py --quick    # best of 5

/lens's cost over a forward pass grows with the positions it charts and shrinks with the
prompt's length, so notes give the ratio with half the chart (--positions 3) and for an 8-token
prompt (no goal; never the headline figure, which is the default chart of six positions).

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

MODEL, TOKENS, SHORT = "smollm2-135m", 32, 8


def best_of_interleaved(fns: dict, repeat: int, device: str) -> tuple[dict[str, float], dict[str, float]]:
    """name -> best wall seconds, and name -> best CPU seconds of this process, the steps run
    alternately so a busy moment hits all alike. With one torch thread every step computes in
    this thread, so its CPU time leaves out the time it waited for a core other engineers held:
    on a shared machine it is the steadier of the two (on an idle one they agree)."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: min(t) for name, t in wall.items()}, {name: min(t) for name, t in cpu.items()}


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
        ids = lm.tokenizer("The quick brown fox jumps over the lazy dog. " * 8)["input_ids"]
        prompt, short = lm.tokenizer.decode(ids[:TOKENS]), lm.tokenizer.decode(ids[:SHORT])
        encode = lambda text: {k: v.to(lm.device) for k, v in lm.tokenizer(text, return_tensors="pt").items()}  # noqa: E731
        inputs, short_inputs = encode(prompt), encode(short)
        n, device, model = inputs["input_ids"].shape[1], lm.device, lm.model

    def plain(inputs=inputs) -> None:  # the baseline: one plain forward, all logits, as transformers gives it
        with tutor.model(MODEL), torch.inference_mode():
            model(**inputs)

    def hooked() -> None:  # the forward pass /inspect --order runs: a hook on every module
        with tutor.model(MODEL), recording(model), torch.inference_mode():
            model(**inputs)

    def tool(command: str):
        reply = chat.final(command, session)
        assert not reply.error, reply.text[:300]
        return reply

    def lens_page(text: str = prompt, flags: str = "") -> None:  # the tool, then its chart as the page gets it
        messages = reply_messages(tool(f"/lens {MODEL} {flags}{text}"), figures)
        assert any("tutor-heatmap" in str(m["content"]) for m in messages)

    steps = {"plain forward": plain, "forward + hooks on every module": hooked,
             "/inspect --order": lambda: tool(f"/inspect {MODEL} --order {prompt}"),
             "/lens": lambda: tool(f"/lens {MODEL} {prompt}"), "/lens with figure": lens_page,
             "/lens --positions 3 with figure": lambda: lens_page(flags="--positions 3 "),
             "short plain forward": lambda: plain(short_inputs), "short /lens with figure": lambda: lens_page(short)}
    for fn in steps.values():  # warm up: first calls pay for lazy imports and allocations
        fn()
    repeat = 5 if args.quick else 9
    best, cpu = best_of_interleaved(steps, repeat, device)
    print(f"{MODEL} on {device}, {n}-token prompt, {torch.get_num_threads()} torch thread(s), best of {repeat}")
    base, cpu_base = best["plain forward"], cpu["plain forward"]
    rep.note("plain forward", f"{base * 1e3:.1f} ms wall, {cpu_base * 1e3:.1f} ms CPU")
    rep.note("forward + hooks on every module", f"{best['forward + hooks on every module'] / base:.2f}x")
    rep.note("/lens without its figure", f"{best['/lens'] / base:.2f}x wall, {cpu['/lens'] / cpu_base:.2f}x CPU")
    rep.note("/lens --positions 3 with figure (half the chart)", f"{best['/lens --positions 3 with figure'] / base:.2f}x wall")
    short = best["short /lens with figure"] / best["short plain forward"]
    short_cpu = cpu["short /lens with figure"] / cpu["short plain forward"]
    rep.note(f"/lens with figure vs a plain forward, {SHORT}-token prompt", f"{short:.2f}x wall, {short_cpu:.2f}x CPU")
    for name in ("/inspect --order", "/lens with figure"):
        rep.figure("P8", f"{name} vs a plain forward", best[name] / base, "<= 1.5",
                   detail=f"{best[name] * 1e3:.0f} ms vs {base * 1e3:.0f} ms wall; {n} tokens")
        rep.figure("P8", f"{name} vs a plain forward, CPU time", cpu[name] / cpu_base, "<= 1.5",
                   detail=f"{cpu[name] * 1e3:.0f} ms vs {cpu_base * 1e3:.0f} ms of this process's CPU")

if __name__ == "__main__":
    main()
