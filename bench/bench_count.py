"""/count throughput through the tool path vs calling tiktoken directly, and the chat round trip
through a real server (gradio_client) vs a direct chat.respond call. Prints ratios from one run.

    python bench/bench_count.py
"""

import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import english  # noqa: E402
from timing import interleaved  # noqa: E402

from tutor import chat  # noqa: E402
from tutor.context import Tutor  # noqa: E402
from tutor.settings import Settings  # noqa: E402


def main() -> None:
    text = english(1_000_000)
    tutor = Tutor(Settings(max_input_chars=2_000_000))  # the usual data dir: assets fetched once
    session = tutor.session("bench")
    print(f"/count on {len(text.encode()):,} bytes of English ({len(text):,} characters)")
    for name in ("r50k_base", "cl100k_base", "o200k_base"):
        enc = tutor.tokenizer(name).encoding  # the very tiktoken Encoding the tool uses
        direct, tool = interleaved(lambda: len(enc.encode_ordinary(text)),
                                   lambda: chat.final(f"/count {name} {text}", session), repeat=7)
        n = len(enc.encode_ordinary(text))
        print(f"  {name:12s} {n:>9,} tokens  direct {len(text) / direct / 1e6:6.2f} M chars/s  "
              f"tool {len(text) / tool / 1e6:6.2f} M chars/s  ratio {direct / tool:.3f} (target >= 0.9)")

    from gradio_client import Client

    from tutor.web import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(tutor)
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    message = "/count o200k_base The cat sat on the mat"
    client.predict(message, "bench", api_name="/ask")  # warm up
    direct_ms, client_ms = [], []
    for _ in range(30):
        start = time.perf_counter()
        chat.final(message, session)
        direct_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        client.predict(message, "bench", api_name="/ask")
        client_ms.append((time.perf_counter() - start) * 1e3)
    d, c = statistics.median(direct_ms), statistics.median(client_ms)
    print(f"chat round trip, median of 30: direct chat.respond {d:.2f} ms, through gradio_client {c:.1f} ms "
          f"(ratio {c / d:.0f}x: the server, queue and HTTP cost, not the tool)")
    app.close()


if __name__ == "__main__":
    main()
