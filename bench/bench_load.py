"""A class on one server, one run: python bench/bench_load.py [--quick]

Starts `tutor serve` as its own process on a free 127.0.0.1 port and drives Gradio's HTTP API
(POST /gradio_api/call/ask, then its event stream) with httpx's async client: one client per
learner, each keeping the session cookie the server gave it. (Not gradio_client: at 50 learners
its own CPU was the bottleneck.) A learner sends a /count, reads the answer for THINK seconds
(random, 2-4 s: a class types far slower), and sends the next; so 50 learners offer about 15
turns a second. A round trip that takes over 120 s is counted as 120 s. It prints:
  * p50/p95 of a /count round trip with 1, 10 and 50 learners, and the p95 at 50 over the p95 at 1
    (target: at most 3x), first on an idle server, then while 8 learners each follow their own
    fine-tune (the issue's scenario: before, their turns filled the endpoint's 8 slots);
  * the server's memory (RSS) before and after 2,000 learner sessions each make one call.
Figures are from this one run; absolute times depend on the machine's load, the ratios less so.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import ASSETS, ROOT, start_server  # noqa: E402

COUNT = "/count o200k_base The cat sat on the mat, and then it sat on the hat."
FINETUNE = "/finetune --from-scratch --steps 2000 --block-size 32 --batch-size 2 --file {path}"
ROUNDS = {1: 15, 10: 6, 50: 4}
THINK_S = (2.0, 4.0)
CAP_S = 120.0


async def ask(client: httpx.AsyncClient, message: str, token: str = "") -> tuple[float, dict]:
    """One /ask round trip through the queue: (seconds, the reply dict)."""
    start = time.perf_counter()
    r = await client.post("gradio_api/call/ask", json={"data": [message, token]})
    r.raise_for_status()
    event = r.json()["event_id"]
    async with client.stream("GET", f"gradio_api/call/ask/{event}") as stream:
        kind, out = None, None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                data = line.split(":", 1)[1].strip()
                out = json.loads(data) if data and data != "null" else None
                break
    if kind != "complete" or not out:
        raise RuntimeError(f"/ask {message[:30]!r} ended with {kind}: {out}")
    return time.perf_counter() - start, out[0]


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0))


async def timed(c: httpx.AsyncClient, message: str) -> float:
    try:
        return (await asyncio.wait_for(ask(c, message), CAP_S))[0]
    except asyncio.TimeoutError:
        return CAP_S


async def learners(url: str, n: int, rounds: int) -> list[float]:
    rng = random.Random(n)

    async def one() -> list[float]:
        async with client(url) as c:
            await c.get("")  # the page: the server sets this learner's session cookie
            await asyncio.sleep(rng.uniform(0, THINK_S[1]))  # learners do not arrive in lockstep
            times = []
            for _ in range(rounds):
                times.append(await timed(c, COUNT))
                await asyncio.sleep(rng.uniform(*THINK_S))
            return times
    return [t for ts in await asyncio.gather(*(one() for _ in range(n))) for t in ts]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def levels(url: str, label: str) -> None:
    p95 = {}
    for n, rounds in ROUNDS.items():
        times = await learners(url, n, rounds)
        p95[n] = pct(times, 95)
        print(f"  {label:<22} {n:>2} learners: p50 {pct(times, 50) * 1000:7.0f} ms   p95 {p95[n] * 1000:7.0f} ms"
              f"   ({len(times)} calls)")
    print(f"  {label:<22} p95 at 50 / p95 at 1: {p95[50] / p95[1]:.2f}x (target <= 3x)")


async def upload(c: httpx.AsyncClient, text: str) -> str:
    r = await c.post("gradio_api/upload", files={"files": ("notes.txt", text.encode(), "text/plain")})
    r.raise_for_status()
    return r.json()[0]


async def with_finetunes(url: str) -> None:
    """8 learners each start a fine-tune and follow it (their /ask stays open), then measure."""
    text = ("The quick brown fox jumps over the lazy dog. A small cat sleeps on the warm mat. " * 200)
    clients = [client(url) for _ in range(8)]
    followers = []
    for c in clients:
        await c.get("")
        path = await upload(c, text)
        followers.append(asyncio.create_task(ask(c, FINETUNE.format(path=path))))
    await asyncio.sleep(5)  # the jobs have started (one trains, the rest wait for the trainer)
    try:
        await levels(url, "with 8 fine-tunes")
    finally:
        for c, f in zip(clients, followers):
            f.cancel()
            try:  # stop the job too, so the next measurement runs on a quiet server
                await ask(c, "/finetune cancel")
            except Exception:
                pass
            await c.aclose()


async def sessions(url: str, proc: psutil.Process, n: int = 2000, at_once: int = 50) -> None:
    before = proc.memory_info().rss
    sem = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with sem, client(url) as c:
            await c.get("")
            await ask(c, "/count gpt2 hello")
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    after = proc.memory_info().rss
    print(f"  {n} sessions in {time.perf_counter() - start:.0f} s: server RSS {before / 2**20:.0f} MB -> "
          f"{after / 2**20:.0f} MB ({(after - before) / n / 1024:.0f} KB per session)")


async def main(quick: bool) -> None:
    home = tempfile.mkdtemp(prefix="tutor-bench-load-")
    env = {**os.environ, "TUTOR_HOME": home, "TUTOR_ASSETS_DIR": str(ASSETS),
           "TIKTOKEN_CACHE_DIR": str(ASSETS / "tiktoken"), "HF_HUB_OFFLINE": "1", "TUTOR_DEVICE": "cpu",
           "TUTOR_FINETUNE_MAX_MINUTES": "30"}
    proc, url = start_server(env)
    try:
        server = psutil.Process(proc.pid)
        async with client(url) as c:
            await c.get("")
            await ask(c, COUNT)  # warm: tokenizers loaded
        print(f"bench_load against {url} (server pid {proc.pid}, {psutil.cpu_count()} CPUs)")
        await levels(url, "idle server")
        await with_finetunes(url)
        await sessions(url, server, n=200 if quick else 2000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    asyncio.run(main("--quick" in sys.argv))
