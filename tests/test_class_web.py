"""A class sharing one real server on 127.0.0.1 (issue #15): fairness under slow tools, identities
the server decides, safe output, uploads that belong to their uploader. Each learner is its own
httpx client keeping the session cookie the server gave it; a test plugin adds /nap (a tool that
waits until the test releases it, a stand-in for a slow plugin tool) and /whoami."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import httpx
import pytest

from tutor import File, Reply, hookimpl
from tutor.context import Tutor
from tutor.web.learners import LEARNER_HEADER, sign_learner
from tutor.plugins import build_registry
from tutor.settings import Settings
from tutor import web

from conftest import ASSETS
from web_server import call, join, running


class Naps:
    """The test plugin: /nap waits for `release` (ignoring Stop unless told), /whoami answers."""

    def __init__(self) -> None:
        self.release, self.lock = threading.Event(), threading.Lock()
        self.started: list[str] = []
        self.cancels: dict[str, threading.Event] = {}

    @hookimpl
    def register_tools(self, register):
        def nap(ctx, *, heed_stop: bool = False) -> Reply:
            """Wait until the test releases it (a stand-in for a slow plugin tool)."""
            with self.lock:
                self.started.append(ctx.session.learner_id)
                self.cancels[ctx.session.learner_id] = ctx.cancel
            while not self.release.wait(0.05):
                if heed_stop and ctx.cancel.is_set():
                    return Reply(text="stopped", data={"stopped": True})
            return Reply(text="awake", data={"stopped": False})

        def whoami(ctx, *, file: File = "") -> Reply:
            """Say which learner this call acts for (a test tool)."""
            return Reply(text=f"you are {ctx.session.learner_id}", data={"learner": ctx.session.learner_id})

        def plot(ctx) -> Reply:
            """A small figure (a test tool)."""
            import matplotlib
            matplotlib.use("Agg")
            from matplotlib.figure import Figure
            fig = Figure(figsize=(2, 2))
            fig.add_subplot().plot([0, 1], [1, 0])
            return Reply(text="a line", figure=fig)

        register(nap)
        register(whoami)
        register(plot)

    def wait_started(self, n: int, timeout: float = 60.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if len(self.started) >= n:
                return
            threading.Event().wait(0.05)
        raise AssertionError(f"only {len(self.started)} of {n} naps started")


def serve(tmp_path_factory, naps: Naps, **settings):
    s = Settings(home=tmp_path_factory.mktemp("class"), assets_dir=ASSETS, offline="yes", **settings)
    reg = build_registry(allow=["count", "tokenize", "openai_encodings", "offline_tokenizers", "naps"], extra=[("naps", naps)], settings=s)
    return running(web.server_app(Tutor(s, registry=reg), mcp=True))


@pytest.fixture(scope="module")
def naps():
    return Naps()


@pytest.fixture(scope="module")
def site(tmp_path_factory, naps):
    with serve(tmp_path_factory, naps, upload_quota_mb=0.01) as url:
        yield url


def learner(url: str) -> httpx.Client:
    """A new learner: a client that opens the page (the server sets its session cookie)."""
    c = httpx.Client(base_url=url + "/", timeout=60)
    assert c.get("").status_code == 200 and c.cookies.get("tutor_session")
    return c


def ask(c: httpx.Client, message: str, token: str = "", timeout: float = 60.0) -> dict:
    return call(c, "ask", [message, token], timeout=timeout)[0]


# ---- 1. fairness -------------------------------------------------------------------------------

def test_eight_slow_calls_do_not_make_count_wait(site, naps):
    """Before: the /ask endpoint had 8 slots, so 8 slow calls made /count wait for them."""
    naps.release.clear()
    sleepers = [learner(site) for _ in range(8)]
    before = len(naps.started)
    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(ask, c, "/nap", "", 120) for c in sleepers]
        naps.wait_started(before + 8)
        try:
            out = ask(learner(site), "/count o200k_base The cat sat on the mat", timeout=30)
            assert not out["error"], out["text"]
            assert out["data"]["counts"] == {"o200k_base": 6}
            assert not any(p.done() for p in pending)  # /count came back while all 8 still slept
        finally:
            naps.release.set()
        assert [p.result()["text"] for p in pending] == ["awake"] * 8


def test_a_full_lane_says_busy_instead_of_hanging_and_tools_have_a_time_limit(tmp_path_factory):
    naps = Naps()
    with serve(tmp_path_factory, naps, lane_quick=1, lane_queue=1, time_limit_quick_s=3) as url:
        a, b, c = learner(url), learner(url), learner(url)
        with ThreadPoolExecutor(3) as pool:
            holder = pool.submit(ask, a, "/nap", "", 60)
            naps.wait_started(1)
            second = pool.submit(ask, b, "/count gpt2 hello", "", 60)
            third = pool.submit(ask, c, "/count gpt2 hello", "", 60)
            done, _ = wait([second, third], timeout=30, return_when=FIRST_COMPLETED)
            first_back = done.pop()
            refused = first_back.result()
            assert refused["error"] and "busy" in refused["text"]  # one waits, the other is told at once
            timed = holder.result(timeout=30)
            assert timed["error"] and "time limit (3 s)" in timed["text"]
            naps.release.set()
            queued = third if first_back is second else second
            assert queued.result(timeout=30)["data"]["counts"] == {"gpt2": 1}


# ---- 2. identity ------------------------------------------------------------------------------

def test_stop_from_another_session_does_not_touch_alices_turn(site, naps):
    """Before: calling the page's Stop handler with "alice" cancelled Alice's work."""
    naps.release.clear()
    alice, mallory = learner(site), learner(site)
    alice_id = ask(alice, "/whoami")["data"]["learner"]
    with ThreadPoolExecutor(1) as pool:
        turn = pool.submit(ask, alice, "/nap --heed-stop", "", 60)
        for _ in range(600):
            if alice_id in naps.cancels:
                break
            threading.Event().wait(0.05)
        assert alice_id in naps.cancels, "alice's nap did not start"
        for claimed in (["alice"], [alice_id], []):
            join(mallory, "stop", claimed)
        assert not naps.cancels[alice_id].is_set()
        join(alice, "stop", [])  # her own Stop, from her own session
        assert turn.result(timeout=30)["data"] == {"stopped": True}


def test_restore_from_another_session_returns_nothing_of_alices(site):
    alice, mallory = learner(site), learner(site)
    alice_id = ask(alice, "/whoami")["data"]["learner"]
    join(alice, "turn_2", ["/tokenize gpt2 alices-secret-words", []], timeout=60)
    mine = join(alice, "restore", [])
    assert "alices-secret-words" in json.dumps(mine)
    for claimed in (["alice"], [alice_id], []):
        theirs = join(mallory, "restore", claimed)
        assert "alices-secret-words" not in json.dumps(theirs)


def _file_urls(value: object) -> list[str]:
    found = re.findall(r'"url": "([^"]*gradio_api/file=[^"]+)"', json.dumps(value))
    return list(dict.fromkeys(found))


def test_a_figure_is_served_to_its_learner_only_and_after_a_reload(site):
    """Before: Gradio keeps its copy of a figure in the upload folder, which the upload guard
    served to no one, so every figure in the page was a broken image (403)."""
    alice, mallory = learner(site), learner(site)
    join(alice, "turn_2", ["/plot", []], timeout=60)
    shown = join(alice, "restore", [])  # the page as a reload shows it
    urls = _file_urls(shown)
    assert len(urls) == 1, shown
    assert alice.get(urls[0]).status_code == 200
    assert alice.get(urls[0]).content.startswith(b"\x89PNG")
    assert mallory.get(urls[0]).status_code == 403
    assert _file_urls(join(alice, "restore", [])) == urls  # one copy, however often it is shown
    before = ask(alice, "/whoami")  # figures do not count against the upload quota
    assert _upload(alice, 6000).status_code == 200, before


def test_api_callers_cannot_name_a_learner_and_get_their_own(site):
    alice, mallory = learner(site), learner(site)
    alice_id = ask(alice, "/whoami")["data"]["learner"]
    for claimed in ("alice", alice_id, "user:alice", "mcp"):
        out = ask(mallory, "/whoami", token=claimed)
        assert out["data"]["learner"] not in (alice_id, "alice", "user:alice", "mcp")
    # a client without cookies keeps its identity through the token the server returns
    bare = httpx.Client(base_url=site + "/", timeout=60)
    first = call(bare, "ask", ["/whoami", ""])[0]
    bare.cookies.clear()
    again = call(bare, "ask", ["/whoami", first["learner"]])[0]
    assert again["data"]["learner"] == first["data"]["learner"] != alice_id
    history, _, token = call(httpx.Client(base_url=site + "/"), "chat", ["/whoami", [], "alice"])[0]
    assert "alice" not in token and alice_id not in json.dumps(history)


def post_ask(c: httpx.Client, message: str, token: str = "") -> dict:
    """The plain JSON route a course site's server calls: one POST, one JSON answer."""
    r = c.post("api/ask", json={"message": message, "learner": token})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_plain_ask_route_keeps_each_caller_to_their_own_learner(site, naps):
    """POST /api/ask skips Gradio's queue and session state; it must still act only for its caller
    and run in the lanes (8 slow calls never make a /count wait)."""
    alice, mallory = learner(site), learner(site)
    alice_id = post_ask(alice, "/whoami")["data"]["learner"]
    assert alice_id == ask(alice, "/whoami")["data"]["learner"]  # the same learner as Gradio's /ask
    for claimed in ("alice", alice_id, "user:alice"):
        assert post_ask(mallory, "/whoami", token=claimed)["data"]["learner"] != alice_id
    bare = httpx.Client(base_url=site + "/", timeout=60)  # no cookie jar kept: the token names it
    first = post_ask(bare, "/whoami")
    bare.cookies.clear()
    assert post_ask(bare, "/whoami", first["learner"])["data"]["learner"] == first["data"]["learner"] != alice_id
    naps.release.clear()
    before = len(naps.started)
    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(post_ask, learner(site), "/nap") for _ in range(8)]
        naps.wait_started(before + 8)
        try:
            out = post_ask(learner(site), "/count o200k_base The cat sat on the mat")
            assert out["data"]["counts"] == {"o200k_base": 6} and not any(p.done() for p in pending)
        finally:
            naps.release.set()
        assert [p.result()["text"] for p in pending] == ["awake"] * 8


def test_the_plain_ask_route_answers_bad_bodies_and_needs_the_login_when_set(site, tmp_path_factory):
    c = httpx.Client(base_url=site + "/", timeout=60)
    for body in ({"mesage": "/count hi"}, {"message": ["/count"]}, {}):
        r = c.post("api/ask", json=body)
        assert r.status_code == 422 and "message" in r.text  # which field was wrong
    assert c.post("api/ask", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    with serve(tmp_path_factory, Naps(), learner_secret="k") as url:
        r = httpx.post(url + "/api/ask", json={"message": "/whoami"})
        assert r.status_code == 401 and "signed-in learners only" in r.text
        expired = {LEARNER_HEADER: sign_learner("k", "ada", ttl_s=-1)}
        assert httpx.post(url + "/api/ask", json={"message": "/whoami"}, headers=expired).status_code == 401
        ok = httpx.post(url + "/api/ask", json={"message": "/whoami"}, headers={LEARNER_HEADER: sign_learner("k", "bo")})
        assert ok.json()["data"]["learner"] == "user:bo" and ok.json()["learner"] == ""


def _mcp_whoami(url: str, headers: dict | None = None) -> str:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def go() -> str:
        async with streamablehttp_client(url + "/gradio_api/mcp/", headers=headers) as (read, write, _):
            async with ClientSession(read, write) as s:
                await s.initialize()
                return (await s.call_tool("whoami", {})).content[0].text
    return asyncio.run(go())


def test_mcp_callers_each_get_their_own_identity(site):
    pytest.importorskip("mcp")
    first, second = _mcp_whoami(site), _mcp_whoami(site)
    assert "you are anon-" in first or "you are web-" in first
    assert first.split("\n")[0] != second.split("\n")[0] and '"learner": "mcp"' not in first


def test_mcp_works_with_a_valid_signed_header_and_refuses_expired_ones(tmp_path_factory):
    """Before: with TUTOR_LEARNER_SECRET set, MCP tools/call failed even with a valid header."""
    pytest.importorskip("mcp")
    with serve(tmp_path_factory, Naps(), learner_secret="k") as url:
        out = _mcp_whoami(url, {LEARNER_HEADER: sign_learner("k", "ada")})
        assert "you are user:ada" in out
        for bad in ({}, {LEARNER_HEADER: sign_learner("k", "ada", ttl_s=-1)}, {LEARNER_HEADER: sign_learner("x", "ada")}):
            try:
                refused = _mcp_whoami(url, bad)
            except Exception:  # refused at the door (401)
                continue
            assert "signed-in learners only" in refused and "you are" not in refused
        expired = sign_learner("k", "ada", ttl_s=-1)
        assert httpx.get(url + "/", headers={LEARNER_HEADER: expired}).status_code == 401
        ok = httpx.Client(base_url=url + "/", headers={LEARNER_HEADER: sign_learner("k", "bo")})
        assert ask(ok, "/whoami")["data"]["learner"] == "user:bo"


# ---- 3. safe output ---------------------------------------------------------------------------

def test_the_escaped_backtick_bypass_and_javascript_links_through_the_server(site):
    c = learner(site)
    bypass = '\\`<form action="https://evil.example/login"><input name=password><button>Log in</button></form>`'
    history, _, _ = call(c, "chat", [bypass, [], ""])[0]
    shown = json.dumps(history)
    assert "<form" not in shown and "<input" not in shown and "&lt;form" in shown
    history, _, _ = call(c, "chat", ['/tokenize "[x](javascript:alert(1))" hi', [], ""])[0]
    echo = history[-1]["content"]
    assert "javascript:alert(1)" in echo and "href" not in echo  # the learner's text, never a link


# ---- 4 and 9. uploads --------------------------------------------------------------------------

def _upload(c: httpx.Client, size: int, name: str = "notes.txt") -> httpx.Response:
    return c.post("gradio_api/upload", files={"files": (name, b"x" * size, "text/plain")})


def test_an_upload_is_its_uploaders_and_has_a_quota(site):
    alice, bob = learner(site), learner(site)
    r = _upload(alice, 6000)
    assert r.status_code == 200
    path = r.json()[0]
    assert not ask(alice, f"/whoami --file {path}")["error"]
    refused = ask(bob, f"/whoami --file {path}")
    assert refused["error"] and "another learner's upload" in refused["text"]
    assert alice.get(f"gradio_api/file={path}").status_code == 200
    assert bob.get(f"gradio_api/file={path}").status_code == 403
    over = _upload(alice, 6000)  # quota 0.01 MB: the second would pass it
    assert over.status_code == 413 and "quota" in over.text
    assert _upload(bob, 6000).status_code == 200  # bob's quota is his own


def test_only_the_servers_own_figures_are_copied_for_the_page(tutor, tmp_path):
    """Classroom.shown copies a figure into Gradio's folder for its learner; a message naming any
    other file (were one ever to reach it) is passed on untouched, never copied and served."""
    from tutor.web.classroom import Classroom

    room = Classroom(tutor, lambda: tmp_path / "gradio")
    figures = tutor.settings.home / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    own = figures / "f.png"
    own.write_bytes(b"png")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the page")
    out = room.shown("alice", [{"role": "assistant", "content": {"path": str(own)}},
                               {"role": "assistant", "content": {"path": str(secret)}}])
    assert Path(out[0]["content"]["path"]).is_relative_to(tmp_path / "gradio")
    assert room.uploads.owner(out[0]["content"]["path"]) == "alice"
    assert out[1]["content"]["path"] == str(secret) and room.uploads.owner(str(secret)) is None
