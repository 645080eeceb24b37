"""Benchmark (P4): the tutor's decoding loop against transformers' model.generate, same process, same run.

    python bench/bench_generate.py            # 128 new tokens, best of 3, and 8 streams vs transformers serve
    python bench/bench_generate.py --quick    # 24 new tokens, best of 2, no server
    python bench/bench_generate.py --serve [--quick]   # only the 8 streams vs transformers serve

Prints, on CPU (float32) and, when CUDA is available, on the GPU (bfloat16):
  1. tokens/s of /generate (streaming, one Reply per token) vs model.generate, 128 new tokens, greedy
     (target >= 0.95);
  2. time to the first streamed token vs one forward pass of the prompt;
  3. aggregate tokens/s with 4 learners generating at once vs 1 (target >= 2x: the decoder
     batches them), and whether one stream and another learner's /lens run at once (the
     decoder and /lens hold the model as readers);
  4. (full mode, or --serve) 8 greedy streams at once, the local decoder vs a real `transformers
     serve --continuous-batching` on 127.0.0.1 serving the same converted SmolLM2 folder with the
     same threads: aggregate tokens/s and median time to first token (goal: report the ratio);
  GPU only: the ratio to the memory-bandwidth limit (bytes of weights read per token / bandwidth).
Each figure is the best of a few alternating repeats, since other processes share the machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from report import Report, arguments  # noqa: E402
from tutor import chat  # noqa: E402
from tutor.context import Tutor  # noqa: E402
from tutor.generation import decoder_for  # noqa: E402
from tutor.models import model_bytes  # noqa: E402
from tutor.settings import Settings  # noqa: E402

MODEL = "smollm2-135m"
NEW = 128
PROMPTS = ["The history of the printing press begins", "In a small village by the sea, there lived",
           "Here is a recipe for a simple tomato soup:", "The three laws of thermodynamics are"]
REPEATS = 3
STREAMS = 8  # concurrent streams against transformers serve
NOMINAL_BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12, "L4": 3.0e11, "A10": 6.0e11}


def in_thread(fn, *args):
    """Run fn in a fresh thread and return its result. The decoder runs the model in its own
    thread, so the peer does too: on a crowded machine, torch's CPU thread pool behaves
    differently in the main thread, and the comparison must not measure that."""
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    return out[0]


def tool_run(tutor: Tutor, prompt: str, learner: str, new: int | None = None) -> tuple[float, float, int, str]:
    """(seconds to the first streamed token, total seconds, new tokens, stop reason) of one /generate."""
    new = new or NEW  # read at call time: --quick changes NEW
    start, first, final = time.perf_counter(), None, None
    for reply in chat.respond(f"/generate --greedy --max-tokens {new} {prompt}", tutor.session(learner)):
        if first is None and not reply.done:
            first = time.perf_counter() - start
        final = reply
    assert not final.error, final.text
    return first, time.perf_counter() - start, len(final.data["ids"]), final.data["stop_reason"]


def generate_run(tutor: Tutor, prompt: str) -> tuple[float, int]:
    with tutor.model(MODEL) as lm:
        ids = torch.tensor([lm.tokenizer.encode(prompt)], device=lm.device)
        sync(lm.device)
        start = time.perf_counter()
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW, do_sample=False,
                                eos_token_id=2, pad_token_id=2)
        sync(lm.device)
        return time.perf_counter() - start, out.shape[1] - ids.shape[1]


def forward_once(tutor: Tutor, prompt: str) -> float:
    with tutor.model(MODEL) as lm, torch.inference_mode():
        ids = torch.tensor([lm.tokenizer.encode(prompt)], device=lm.device)
        sync(lm.device)
        start = time.perf_counter()
        lm.model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=1)  # as generate's prefill
        sync(lm.device)
        return time.perf_counter() - start


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def at_once(tutor: Tutor, n: int, tag: str) -> tuple[float, list]:
    """Wall seconds, and each learner's tool_run result, when n learners run /generate at the same moment."""
    results, barrier = [None] * n, threading.Barrier(n + 1)

    def learner(i: int) -> None:
        barrier.wait()
        results[i] = tool_run(tutor, PROMPTS[i % len(PROMPTS)], f"{tag}-{i}")

    threads = [threading.Thread(target=learner, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    barrier.wait()
    start = time.perf_counter()
    [t.join() for t in threads]
    return time.perf_counter() - start, results


def concurrent(tutor: Tutor, n: int) -> tuple[float, int]:
    """Wall seconds and tokens made when n learners each run /generate at the same moment."""
    wall, results = at_once(tutor, n, f"bench-{n}")
    return wall, sum(r[2] for r in results)


def stream_during_lens(tutor: Tutor, new: int = 64) -> tuple[int, int, float]:
    """One learner streams /generate while another runs /lens on the same model: (tokens the
    stream made while /lens ran, tokens it made after /lens ended, /lens seconds). Both are
    above 0 only when the two run at once: with a lock held exclusively per decoding step,
    either the stream pauses for the whole /lens or /lens waits (starved) until the stream ends."""
    stamps, third = [], threading.Event()

    def stream() -> None:
        for _ in chat.respond(f"/generate --greedy --max-tokens {new} {PROMPTS[1]}", tutor.session("stream")):
            stamps.append(time.perf_counter())
            if len(stamps) == 3:
                third.set()

    worker = threading.Thread(target=stream)
    worker.start()
    third.wait(120)
    start = time.perf_counter()
    reply = chat.final(f"/lens {MODEL} {PROMPTS[0]}", tutor.session("lens"))
    end = time.perf_counter()
    worker.join()
    assert not reply.error, reply.text
    return sum(start < t < end for t in stamps), sum(t > end for t in stamps[:-1]), end - start


def section(device: str, rep: Report, serve: bool = False) -> None:
    tutor = Tutor(Settings(device=device, offline="yes"))
    with tutor.model(MODEL) as lm:
        dtype, weights = lm.dtype, model_bytes(lm)
    prompt = PROMPTS[0]
    tool_run(tutor, prompt, "warm-up", 8)
    in_thread(generate_run, tutor, prompt)
    print(f"\n== {MODEL} on {device} ({str(dtype).removeprefix('torch.')}), greedy, {NEW} new tokens ==")

    tool, gen, firsts, forwards = [], [], [], []
    for _ in range(REPEATS):  # alternate, so a busy moment hurts both sides alike
        first, total, n, reason = tool_run(tutor, prompt, "bench")
        tool.append(n / total)
        firsts.append(first)
        seconds, m = in_thread(generate_run, tutor, prompt)
        gen.append(m / seconds)
        forwards.append(in_thread(forward_once, tutor, prompt))
    rep.figure("P4", f"/generate vs transformers generate ({device})", max(tool) / max(gen), ">= 0.95",
               detail=f"{max(tool):.1f} vs {max(gen):.1f} tokens/s, greedy, {NEW} new; tool stopped by {reason} "
                      f"after {n}, generate made {m}")
    print(f"2. first token {min(firsts) * 1e3:7.1f} ms   one forward of the prompt {min(forwards) * 1e3:7.1f} ms   "
          f"ratio {min(firsts) / min(forwards):.2f}  (median {statistics.median(firsts) * 1e3:.1f} ms)")

    decoder = decoder_for(tutor, MODEL)
    one = max(n / s for s, n in (concurrent(tutor, 1) for _ in range(REPEATS)))
    decoder.largest_batch = 0
    four = max(n / s for s, n in (concurrent(tutor, 4) for _ in range(REPEATS)))
    rep.figure("P4", f"4 learners vs 1, aggregate tokens/s ({device})", four / one, ">= 2",
               detail=f"{one:.1f} vs {four:.1f} tokens/s; largest batch stepped together {decoder.largest_batch}")
    during, after, lens_s = stream_during_lens(tutor)
    rep.figure("P4", f"a stream and another learner's /lens run at once: tokens during /lens and after it, "
               f"the fewer ({device})", min(during, after), ">= 1", unit="",
               detail=f"{during} tokens while /lens ran ({lens_s * 1e3:.0f} ms), {after} after it")
    if serve:
        versus_server(tutor, rep, STREAMS, device)

    if device == "cuda":
        name = torch.cuda.get_device_name()
        nominal = next((bw for key, bw in NOMINAL_BANDWIDTH.items() if key in name), None)
        measured = copy_bandwidth()
        for label, rate in (("tool loop", max(tool)), ("model.generate", max(gen))):
            limit_s = weights / measured
            rep.figure("GPU", f"{label}: tokens/s against the bandwidth bound", limit_s * rate, "report", unit="",
                       detail=f"{rate:.0f} tokens/s; {weights / 1e6:.0f} MB at {measured / 1e12:.2f} TB/s")
            print(f"   {label}: {1e3 / rate:.2f} ms/token; reading {weights / 1e6:.0f} MB of weights at the "
                  f"measured {measured / 1e12:.2f} TB/s takes {limit_s * 1e3:.3f} ms -> {limit_s * rate:.1%} of the "
                  f"bandwidth limit" + (f" (nominal {nominal / 1e12:.1f} TB/s: {weights / nominal * rate:.1%})"
                                        if nominal else ""))


def copy_bandwidth() -> float:
    """Bytes per second of a large device-to-device copy (read + write), the practical ceiling."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 2 * src.numel() * 10 / (time.perf_counter() - start)


def versus_server(tutor: Tutor, rep: Report, n: int, device: str) -> None:
    """n greedy streams at once: the local decoder, then a real `transformers serve
    --continuous-batching` on 127.0.0.1 serving the same converted folder, same threads, same
    max tokens: aggregate tokens/s and the median time to each stream's first token, best of
    REPEATS alternating rounds. A server that cannot start is reported with what it printed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from llm_server import serving
    from tutor.assets import smollm2_folder

    log = Path(tempfile.gettempdir()) / f"bench-serve-{os.getpid()}.log"
    try:
        with serving(smollm2_folder(tutor.settings.assets), continuous_batching=True,
                     threads=torch.get_num_threads(), log=log) as url:
            served_once(url, 1, 8)  # warm up: the server sets up its batching manager on the first request
            local, served = [], []
            for _ in range(REPEATS):  # alternate, so a busy moment hurts both sides alike
                local.append(local_streams(tutor, n))
                served.append(served_once(url, n, NEW, tutor))
    except RuntimeError as e:  # llm_server: exited or never answered; its log is in the message
        rep.note(f"local decoder vs transformers serve --continuous-batching ({device})",
                 f"skipped: the server did not start: {str(e)[-600:]}")
        return
    finally:
        log.unlink(missing_ok=True)
    (lt, lf), (st, sf) = max(local), max(served)
    rep.figure("P4", f"local decoder vs transformers serve --continuous-batching, {n} streams, aggregate "
               f"tokens/s ({device})", lt / st, "report",
               detail=f"{lt:.1f} vs {st:.1f} tokens/s, greedy, {NEW} new each, {torch.get_num_threads()} thread(s)")
    rep.figure("P4", f"local decoder vs transformers serve --continuous-batching, {n} streams, median time "
               f"to first token ({device})", lf / sf, "report", detail=f"{lf * 1e3:.0f} vs {sf * 1e3:.0f} ms")


def local_streams(tutor: Tutor, n: int) -> tuple[float, float]:
    """(aggregate tokens/s, median seconds to the first token) of n learners' /generate at once."""
    wall, results = at_once(tutor, n, "serve")
    return sum(r[2] for r in results) / wall, statistics.median(r[0] for r in results)


def served_once(url: str, n: int, new: int, tutor: Tutor | None = None) -> tuple[float, float]:
    """The same from the server: (aggregate tokens/s, median seconds to the first streamed text).
    `transformers serve` streams text without logprobs, so the tokens are counted by the local
    tokenizer (a stream that ends by 'length' made exactly `new`)."""
    from tutor.remote import Finish, Server

    server, results, barrier = Server(url), [None] * n, threading.Barrier(n + 1)

    def stream(i: int) -> None:
        barrier.wait()
        start, first, text, reason = time.perf_counter(), None, "", None
        for piece in server.complete(PROMPTS[i % len(PROMPTS)], new, temperature=0.0):
            if isinstance(piece, Finish):
                reason = piece.reason
                continue
            first = first or time.perf_counter() - start
            text += piece.text
        results[i] = (first, new if reason == "length" else count_tokens(tutor, text))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    barrier.wait()
    start = time.perf_counter()
    [t.join() for t in threads]
    return sum(r[1] for r in results) / (time.perf_counter() - start), statistics.median(r[0] for r in results)


def count_tokens(tutor: Tutor | None, text: str) -> int:
    if tutor is None:
        return 0
    with tutor.model(MODEL, shared=True) as lm:
        return len(lm.tokenizer.encode(text))


def main() -> None:
    global NEW, REPEATS
    args = arguments(__doc__, **{"--threads": {"type": int, "default": 1},
                                 "--no-serve": {"action": "store_true", "help": "skip transformers serve"},
                                 "--serve": {"action": "store_true", "help": "only the 8 streams vs "
                                             "transformers serve (with --quick too)"}}).parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        NEW, REPEATS = 24, 2
    rep = Report("generate", args.out)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.serve:
        tutor = Tutor(Settings(device="cpu", offline="yes"))
        tool_run(tutor, PROMPTS[0], "warm-up", 8)
        print(f"\n== {MODEL} on cpu, {STREAMS} greedy streams of {NEW} new tokens vs transformers serve ==")
        versus_server(tutor, rep, STREAMS, "cpu")
        return
    section("cpu", rep, serve=not (args.quick or args.no_serve))
    if torch.cuda.is_available():
        section("cuda", rep)
    else:
        print("\n(GPU section skipped: CUDA is not available on this machine; bench/gpu.py runs it there)")


if __name__ == "__main__":
    main()
