"""Web round trips, one run (P7): python bench/bench_web.py [--quick] [--first-load]

Starts `tutor serve` as its own process on a free 127.0.0.1 port and drives it from this machine:
  * P7 with a light HTTP client: asyncio + httpx, one connection pool and cookie jar per learner.
    A learner is a person: sends a message, reads the answer, thinks (exponential think time,
    seeded), sends the next. 1 learner and 50 learners are measured the same way, through both
    ways a course site can call /ask: the plain JSON route `POST /api/ask`, and Gradio's HTTP
    API `POST /gradio_api/call/ask` + its event stream (no Gradio session, as curl or a course
    server calls it). The think time and the load it offers (requests/s) are printed beside each
    figure; the server's CPU time per request is measured from its process.
  * the closed-loop saturation throughput: 50 learners with no pause, requests/s the server
    completes (a different question from P7's: how much it can take, not how it feels);
  * the old figure, labelled as such: 50 gradio_client threads firing /ask back to back vs 1, and
    the server's memory with them connected (full mode only);
  * a chat round trip vs the same turn as a direct chat.respond call;
  * a new Gradio session over the page, Gradio's own vs tutor/web/sessions.py's;
  * the page's first load: HTML and config (time and bytes), the number of Gradio components,
    and a new gradio_client session's first round trip vs a warm one (`--first-load`: only these).
Figures are ratios from this one run; absolute times depend on the machine's load, which is
printed with them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, arguments  # noqa: E402

ASSETS = Path(os.environ.get("TUTOR_TEST_ASSETS_DIR", Path.home() / ".cache" / "tutor-test-assets"))
MESSAGE = "/count o200k_base The cat sat on the mat, and then it sat on the hat."
ROUTES = {"POST /api/ask": "json", "Gradio /gradio_api/call/ask": "gradio"}
# --quick leaves out the gradio_client levels (50 Client objects take ~20 s to connect) to stay under 2 minutes
FULL = {"think_s": 3.0, "window_1_s": 90.0, "window_50_s": 60.0, "saturate_s": 20.0, "rounds": {1: 40, 50: 3}}
QUICK = {"think_s": 2.0, "window_1_s": 14.0, "window_50_s": 8.0, "saturate_s": 2.0, "rounds": {}}
TIMEOUT_S = 60.0


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
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# ---- the light HTTP client -------------------------------------------------------------------

async def ask_json(client: httpx.AsyncClient, token: str) -> dict:
    r = await client.post("api/ask", json={"message": MESSAGE, "learner": token})
    r.raise_for_status()
    return r.json()


async def ask_gradio(client: httpx.AsyncClient, token: str) -> dict:
    """Gradio's HTTP API as its docs show it: POST the inputs, then read the event stream."""
    r = await client.post("gradio_api/call/ask", json={"data": [MESSAGE, token]})
    r.raise_for_status()
    kind = None
    async with client.stream("GET", f"gradio_api/call/ask/{r.json()['event_id']}") as events:
        async for line in events.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                if kind == "error":
                    raise RuntimeError(line)
                return json.loads(line.split(":", 1)[1])[0]
    raise RuntimeError("the event stream ended without a result")


@dataclass
class Level:
    """What one level measured: latencies of the calls started in the window, errors, load."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    window_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    idle_cpu: float = 0.0  # the server's CPU seconds per second when no one calls it

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.window_s if self.window_s else 0.0

    def line(self) -> str:
        lat, busy = self.latencies, self.server_cpu_s - self.idle_cpu * self.window_s
        return (f"p50 {pct(lat, 50) * 1e3:.1f} ms, p95 {pct(lat, 95) * 1e3:.1f} ms, {len(lat)} calls in "
                f"{self.window_s:.0f} s ({self.rps:.1f} req/s served), {len(self.errors)} errors; server CPU "
                f"{busy / max(len(lat), 1) * 1e3:.1f} ms/request (net of its idle work), this client's CPU "
                f"{self.client_cpu_s / max(len(lat), 1) * 1e3:.1f} ms/request"
                + (f"; first error: {self.errors[0]}" if self.errors else ""))


@dataclass
class Clock:
    """The measuring window every learner of a level shares; it opens once all have arrived."""

    arrived: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    until: float = 0.0


async def learner(url: str, route: str, think_s: float, rng: random.Random, clock: Clock, n: int,
                  window_s: float, level: Level) -> None:
    ask = ask_json if route == "json" else ask_gradio
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=2)) as client:
        await asyncio.sleep(rng.uniform(0, think_s))  # learners arrive spread over one think time
        try:
            token = (await ask(client, ""))["learner"]  # arriving: not counted
        except (httpx.HTTPError, RuntimeError) as e:  # counted as an error; it goes on without a token
            token = ""
            level.errors.append(f"arriving: {type(e).__name__}: {e}"[:200])
        clock.arrived += 1
        if clock.arrived == n:
            clock.until = time.monotonic() + window_s
            clock.opened.set()
        await clock.opened.wait()
        while True:
            # a think time that would end after the window is cut short: the learner stops there
            pause = rng.expovariate(1 / think_s) if think_s else 0.0
            await asyncio.sleep(max(0.0, min(pause, clock.until - time.monotonic())))
            if time.monotonic() >= clock.until:
                return
            start = time.perf_counter()
            try:
                reply = await ask(client, token)
                if reply["error"]:
                    level.errors.append(reply["text"][:200])
                else:
                    level.latencies.append(time.perf_counter() - start)
            except (httpx.HTTPError, RuntimeError) as e:
                level.errors.append(f"{type(e).__name__}: {e}"[:200])


async def _level(url: str, route: str, n: int, think_s: float, window_s: float, server: psutil.Process,
                 seed: int) -> Level:
    level, clock = Level(), Clock()

    async def opened() -> tuple[float, float, float]:
        await clock.opened.wait()
        return time.monotonic(), sum(server.cpu_times()[:2]), time.process_time()
    started = asyncio.ensure_future(opened())
    await asyncio.gather(*(learner(url, route, think_s, random.Random(seed * 1000 + i), clock, n, window_s, level)
                           for i in range(n)))
    t0, cpu0, me0 = started.result()
    # the calls started in the window, and all the CPU until the last of them came back
    level.window_s = time.monotonic() - t0
    level.server_cpu_s = sum(server.cpu_times()[:2]) - cpu0
    level.client_cpu_s = time.process_time() - me0
    return level


def light(url: str, route: str, n: int, think_s: float, window_s: float, server: psutil.Process,
          seed: int = 18, idle_cpu: float = 0.0) -> Level:
    level = asyncio.run(_level(url, route, n, think_s, window_s, server, seed))
    level.idle_cpu = idle_cpu
    return level


def idle_cpu(server: psutil.Process, seconds: float = 2.0) -> float:
    """The server's CPU seconds per second with no calls (Gradio's queue polls every millisecond)."""
    before = sum(server.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(server.cpu_times()[:2]) - before) / seconds


def p7(rep: Report, url: str, server: psutil.Process, cfg: dict) -> dict[str, Level]:
    """1 and 50 learners with think time, for each route, interleaved (1, 1, 50, 50), then each
    route's closed-loop saturation. Each level is written as soon as it is measured."""
    think, out, idle = cfg["think_s"], {}, idle_cpu(server)
    print(f"light HTTP client (asyncio + httpx), think time exponential, mean {think:g} s, seeded; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; the idle server uses "
          f"{idle * 1e3:.0f} ms of CPU per second")
    for n, window in ((1, cfg["window_1_s"]), (50, cfg["window_50_s"])):
        for label, route in ROUTES.items():
            level = out[(route, n)] = light(url, route, n, think, window, server, idle_cpu=idle)
            rep.note(f"{n} learner(s), {label}", f"think mean {think:g} s: offered {n / think:.1f} req/s "
                     "(if answers were instant); "
                     + level.line())
    for label, route in ROUTES.items():
        one, many = out[(route, 1)], out[(route, 50)]
        if one.latencies and many.latencies:
            ratio = pct(many.latencies, 95) / pct(one.latencies, 95)
            # below 1 the ratio would read as if load made answers faster: say what it means
            noisy = ("; the lone learner's p95 was the higher (each lone call wakes an idle machine, "
                     "so this says no slowdown, not a speedup)"
                     if ratio < 1 else "")
            rep.figure("P7", f"p95 with 50 learners vs 1 (light HTTP client, {label})", ratio, "<= 3",
                       detail=f"{pct(many.latencies, 95) * 1e3:.0f} vs {pct(one.latencies, 95) * 1e3:.0f} ms; "
                              f"think mean {think:g} s; 50 learners offered {50 / think:.0f} req/s, served "
                              f"{many.rps:.1f}{noisy}")
    for label, route in ROUTES.items():
        level = out[(route, "sat")] = light(url, route, 50, 0.0, cfg["saturate_s"], server, idle_cpu=idle)
        rep.note(f"closed-loop saturation, {label}", f"50 learners, no think time: {level.rps:.1f} req/s; "
                 + level.line())
    return out


# ---- gradio_client (the old figure) and the first load ------------------------------------------

def client_rounds(client: Client, rounds: int, errors: list | None = None) -> list[float]:
    """`rounds` back-to-back /ask calls; a call that fails is counted in `errors` (when given)."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        try:
            reply = client.predict(MESSAGE, api_name="/ask")
        except Exception as e:  # gradio_client's own timeouts under load: counted, not fatal
            if errors is None:
                raise
            errors.append(f"{type(e).__name__}: {e}"[:200])
            continue
        out.append(time.perf_counter() - t)
        assert not reply["error"], reply
    return out


def gradio_client_levels(rep: Report, url: str, rounds: dict[int, int], server: psutil.Process) -> None:
    """50 gradio_client threads, back to back (no think time), vs 1."""
    results, idle_mb = {}, server.memory_info().rss / 2**20
    for n, k in rounds.items():
        clients, errors = [Client(url, verbose=False) for _ in range(n)], []  # n learners connected
        with ThreadPoolExecutor(n) as pool:
            lat = [x for xs in pool.map(lambda c: client_rounds(c, k, errors), clients) for x in xs]
        mb = server.memory_info().rss / 2**20  # while all n are still connected
        for c in clients:
            c.close()
        results[n] = (pct(lat, 50), pct(lat, 95))
        rep.note(f"{n} learner(s), gradio_client, no think time",
                 f"p50 {results[n][0] * 1e3:.1f} ms, p95 {results[n][1] * 1e3:.1f} ms, {len(lat)} calls, "
                 f"{len(errors)} failed" + (f" (first: {errors[0]})" if errors else ""))
        if n == 50:
            print(f"  server RSS: idle {idle_mb:.0f} MiB; with 50 gradio_client learners connected {mb:.0f} MiB "
                  f"({mb - idle_mb:+.0f} MiB, {(mb - idle_mb) / 50:.2f} MiB per learner)")
    rep.figure("P7", "p95 with 50 learners vs 1 (gradio_client threads, back to back)",
               results[50][1] / results[1][1], "report",
               # closed loop: 50 calls always in flight on 2 cores, so p95 is mostly the queue's
               # length by construction; P7's goal is set for learners who read and think
               detail=f"{results[50][1] * 1e3:.0f} vs {results[1][1] * 1e3:.0f} ms; closed loop, not the light "
                      f"client P7's goal is for")


def first_load(url: str, rounds: int = 20, sessions: bool = True) -> None:
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
    if not sessions:
        return
    # each gradio_client Client streams a heartbeat from the server in a thread until it is closed:
    # closed here, so none of them runs beside the levels timed next
    new, warm = [], Client(url, verbose=False)
    warm.predict(MESSAGE, api_name="/ask")
    for _ in range(rounds):
        t = time.perf_counter()
        client = Client(url, verbose=False)
        client.predict(MESSAGE, api_name="/ask")  # a new session each time
        new.append(time.perf_counter() - t)
        client.close()
    again = client_rounds(warm, rounds)
    warm.close()
    n50, w50 = statistics.median(new), statistics.median(again)
    print(f"new session (connect + first /count): p50 {n50 * 1e3:.1f} ms vs a warm session's round trip "
          f"{w50 * 1e3:.1f} ms -> {n50 / w50:.1f}x")


def direct_turn(env: dict, web_p50: float) -> None:
    """Issue 2's figure: the same turn through the web stack vs a direct call in this process."""
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
    print(f"chat turn: POST /api/ask round trip p50 {web_p50 * 1e3:.1f} ms vs direct chat.respond "
          f"p50 {d50 * 1e3:.3f} ms -> the web stack costs {web_p50 / d50:.0f}x the turn itself "
          f"(+{(web_p50 - d50) * 1e3:.1f} ms)")


def session_cost() -> None:
    """What a new Gradio session over this page costs: Gradio's own SessionState, building every
    component's config, vs tutor/web/sessions.py's, building each when read (after direct_turn,
    whose environment it shares)."""
    from gradio.state_holder import SessionState
    from timing import interleaved

    from tutor.context import Tutor
    from tutor.settings import Settings
    from tutor.web import build_app, sessions
    page = build_app(Tutor(Settings(offline="yes")))

    def gradios() -> None:
        sessions.uninstall()
        try:
            SessionState(page)
        finally:
            sessions.install()
    lazy, eager = interleaved(lambda: SessionState(page), gradios, 20)
    print(f"a new Gradio session over the page's {len(page.blocks)} blocks: {lazy * 1e3:.2f} ms vs Gradio's own "
          f"{eager * 1e3:.1f} ms -> {eager / lazy:.0f}x cheaper (best of 20, interleaved)")


def main() -> None:
    args = arguments(__doc__, **{"--first-load": {"action": "store_true", "help": "only the page's first load"}}
                     ).parse_args()
    cfg = QUICK if args.quick else FULL
    rep = Report("web", args.out)
    home = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    env = {**os.environ, "TUTOR_HOME": str(home), "TUTOR_ASSETS_DIR": str(ASSETS),
           "TIKTOKEN_CACHE_DIR": str(ASSETS / "tiktoken"), "HF_HUB_OFFLINE": "1", "TUTOR_ENTRY_POINTS": "0",
           "TUTOR_LEARNER_CONCURRENT_JOBS": "4"}
    began = time.monotonic()
    proc, url = start_server(env)
    server = psutil.Process(proc.pid)
    print(f"server up in {time.monotonic() - began:.0f} s")
    try:
        first_load(url, 3 if args.quick else 20, sessions=not args.quick or args.first_load)
        if args.first_load:
            return
        light(url, "json", 1, 0.0, 1.0, server)  # tokenizer loaded, code paths warm
        levels = p7(rep, url, server, cfg)
        try:
            if cfg["rounds"]:
                gradio_client_levels(rep, url, cfg["rounds"], server)
        except Exception as e:  # the light client's figures above are kept either way
            rep.note("gradio_client levels", f"failed: {type(e).__name__}: {e}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    direct_turn(env, pct(levels[("json", 1)].latencies, 50))
    session_cost()


if __name__ == "__main__":
    main()
