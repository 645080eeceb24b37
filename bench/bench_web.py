"""Web round trips, one run (P7): python bench/bench_web.py [--quick]

Starts `tutor serve` as its own process on a free 127.0.0.1 port and drives it with gradio_client
from this machine:
  * p50/p95 latency of a /count round trip (the /ask endpoint) with 1, 10 and 50 concurrent
    simulated learners, each relative to the single-learner figure;
  * the server process's memory (RSS) idle and with 50 learners connected;
  * a chat round trip through gradio_client vs the same turn as a direct chat.respond call;
  * the page's first load: the HTML and the app config (time and bytes), the number of Gradio
    components on the page, and a new browser session's first round trip relative to a warm one
    (`--first-load` prints only these).
Figures are ratios from this one run; absolute times depend on the machine's load.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import tempfile

import httpx
import psutil
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, arguments  # noqa: E402

ASSETS = Path(os.environ.get("TUTOR_TEST_ASSETS_DIR", Path.home() / ".cache" / "tutor-test-assets"))
MESSAGE = "/count o200k_base The cat sat on the mat, and then it sat on the hat."
ROUNDS = {1: 40, 10: 8, 50: 3}  # round trips per learner at each level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "serve", "--port", str(port), "--offline", "yes"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            if httpx.get(url + "config", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-2000:])


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def learner(client: Client, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        reply = client.predict(MESSAGE, api_name="/ask")
        out.append(time.perf_counter() - t)
        assert not reply["error"], reply
    return out


def first_load(url: str, rounds: int = 20) -> None:
    """What a learner's browser fetches before the page works, and what a new session costs."""
    loads = []
    for _ in range(rounds):
        t = time.perf_counter()
        page = httpx.get(url, timeout=60)
        config = httpx.get(url + "config", timeout=60)
        loads.append((time.perf_counter() - t, len(page.content), len(config.content)))
    components = len(config.json().get("components", []))
    p50 = statistics.median(x[0] for x in loads)
    print(f"first load (HTML + config): p50 {p50 * 1e3:.1f} ms, {loads[0][1] / 1024:.1f} KiB HTML + "
          f"{loads[0][2] / 1024:.1f} KiB config; {components} Gradio components on the page")
    new, warm = [], Client(url, verbose=False)
    warm.predict(MESSAGE, api_name="/ask")
    for _ in range(rounds):
        t = time.perf_counter()
        Client(url, verbose=False).predict(MESSAGE, api_name="/ask")  # a new session each time
        new.append(time.perf_counter() - t)
    again = []
    for _ in range(rounds):
        t = time.perf_counter()
        warm.predict(MESSAGE, api_name="/ask")
        again.append(time.perf_counter() - t)
    n50, w50 = statistics.median(new), statistics.median(again)
    print(f"new session (connect + first /count): p50 {n50 * 1e3:.1f} ms vs a warm session's round trip "
          f"{w50 * 1e3:.1f} ms -> {n50 / w50:.1f}x")


def main() -> None:
    args = arguments(__doc__).parse_args()
    if args.quick:
        ROUNDS.update({1: 15, 10: 3, 50: 2})
    rep = Report("web", args.out)
    home = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    env = {**os.environ, "TUTOR_HOME": str(home), "TUTOR_ASSETS_DIR": str(ASSETS),
           "TIKTOKEN_CACHE_DIR": str(ASSETS / "tiktoken"), "HF_HUB_OFFLINE": "1", "TUTOR_ENTRY_POINTS": "0",
           "TUTOR_LEARNER_CONCURRENT_JOBS": "4"}
    proc, url = start_server(env)
    server = psutil.Process(proc.pid)
    if "--first-load" in sys.argv:
        try:
            first_load(url)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        return
    try:
        first_load(url)
        warm = Client(url, verbose=False)
        learner(warm, 3)  # tokenizer loaded, code paths warm
        idle_mb = server.memory_info().rss / 2**20
        results = {}
        for n, rounds in ROUNDS.items():
            clients = [Client(url, verbose=False) for _ in range(n)]  # n learners connected
            with ThreadPoolExecutor(n) as pool:
                lat = [x for xs in pool.map(lambda c: learner(c, rounds), clients) for x in xs]
            results[n] = (pct(lat, 50), pct(lat, 95), len(lat))
            rep.note(f"{n} learner(s), gradio_client", f"p50 {results[n][0] * 1e3:.1f} ms, p95 "
                     f"{results[n][1] * 1e3:.1f} ms, {len(lat)} calls")  # kept even if a later level fails
            if n == 50:
                connected_mb = server.memory_info().rss / 2**20
            del clients
        base50, base95, _ = results[1]
        rep.figure("P7", "p95 with 50 learners vs 1 (gradio_client)", results[50][1] / base95, "<= 3",
                   detail=f"{results[50][1] * 1e3:.0f} vs {base95 * 1e3:.0f} ms")
        print(f"/count round trip through gradio_client, server `tutor serve` on 127.0.0.1 ({os.cpu_count()} CPUs)")
        print(f"{'learners':>8} {'calls':>6} {'p50 ms':>8} {'p95 ms':>8} {'p50 vs 1':>9} {'p95 vs 1':>9}")
        for n, (p50, p95, calls) in results.items():
            print(f"{n:>8} {calls:>6} {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {p50 / base50:8.2f}x {p95 / base95:8.2f}x")
        print(f"server RSS: idle {idle_mb:.0f} MiB; with 50 learners connected {connected_mb:.0f} MiB "
              f"({connected_mb - idle_mb:+.0f} MiB, {(connected_mb - idle_mb) / 50:.2f} MiB per learner)")
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    # Issue 2's figure: the same turn through the web stack vs a direct call in this process.
    sys.path.insert(0, str(ROOT))
    os.environ.update({k: env[k] for k in ("TUTOR_HOME", "TUTOR_ASSETS_DIR", "TIKTOKEN_CACHE_DIR", "HF_HUB_OFFLINE",
                                           "TUTOR_ENTRY_POINTS")})
    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings
    session = Tutor(Settings(offline="yes")).session("bench")
    chat.final(MESSAGE, session)
    direct = []
    for _ in range(200):
        t = time.perf_counter()
        chat.final(MESSAGE, session)
        direct.append(time.perf_counter() - t)
    d50 = statistics.median(direct)
    print(f"chat turn: gradio_client round trip p50 {base50 * 1e3:.1f} ms vs direct chat.respond "
          f"p50 {d50 * 1e3:.3f} ms -> the web stack costs {base50 / d50:.0f}x the turn itself "
          f"(+{(base50 - d50) * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
