"""The chat history store: every message kept as it streams, across reopening (a server restart)."""

from __future__ import annotations

import threading

from tutor.history import DONE, INTERRUPTED, QUEUED, RUNNING, HistoryStore, open_history


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def test_turns_stream_and_survive_reopening(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    a = store.begin("ada", [user("/count hi")])
    store.update("ada", a, [user("/count hi"), bot("1 token")], DONE)
    b = store.begin("ada", [user("/generate The cat")])
    store.update("ada", b, [user("/generate The cat"), bot("The cat sat")])  # still streaming
    store.begin("bob", [user("start")], DONE)
    # a reload while turn b streams: everything so far, and nothing of bob's
    assert store.messages("ada") == [user("/count hi"), bot("1 token"), user("/generate The cat"),
                                     bot("The cat sat")]
    assert [s for _, s, _ in store.turns("ada")] == [DONE, RUNNING]
    store.close()
    # the server stopped mid-turn: the restarted one shows the turn, marked as cut off
    again = HistoryStore(tmp_path / "h.sqlite")
    msgs = again.messages("ada")
    assert msgs[:4] == [user("/count hi"), bot("1 token"), user("/generate The cat"), bot("The cat sat")]
    assert msgs[4] == bot(INTERRUPTED)
    assert again.messages("bob") == [user("start")]
    again.clear("ada")
    assert again.messages("ada") == [] and again.messages("bob") == [user("start")]


def test_queued_turns_keep_their_order_and_figures(tmp_path):
    store = open_history(tmp_path)
    assert open_history(tmp_path) is store  # one store per data dir
    first = store.begin("ada", [user("/bpe train x")])
    second = store.begin("ada", [user("next")], QUEUED)
    assert second == first + 1
    store.update("ada", first, [user("/bpe train x"), bot("done"), {"role": "assistant",
                                                                   "content": {"path": "/f/a.png"}}], DONE)
    assert [(n, s) for n, s, _ in store.turns("ada")] == [(first, DONE), (second, QUEUED)]
    assert store.messages("ada")[2] == {"role": "assistant", "content": {"path": "/f/a.png"}}


def test_many_threads_number_turns_once_each(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite")
    got = []
    threads = [threading.Thread(target=lambda i=i: got.append(store.begin("ada", [user(str(i))], DONE)))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 21))
    assert sorted(int(m["content"]) for m in store.messages("ada")) == list(range(20))
