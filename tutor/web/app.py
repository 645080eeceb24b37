"""The page: build_app() composes the Blocks from small named parts (outline, chat, palette,
panels) and wires their events to the handlers in turns.py; mount() puts it inside a course site
with the safe defaults (CORS allowlist, upload limit, no file routes outside the app's figures,
no analytics); server_app() is the same as a whole site for `tutor serve`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from ..context import Tutor
from .api import api_endpoints, ask_route
from .learners import signed_learner
from .palette import palette
from .sessions import install as lazy_sessions
from .panels import models_markdown, outline_panel, plugins_markdown
from .turns import Turns
from .uploads import accepted_suffixes

CSS = """
.tokens { line-height: 2; }
.tok { color: #111; padding: 1px 2px; margin: 1px; border-radius: 3px; font-family: monospace; }
.tok-0 { background: #fde68a; } .tok-1 { background: #bfdbfe; } .tok-2 { background: #bbf7d0; }
.tok-3 { background: #fbcfe8; } .tok-4 { background: #ddd6fe; } .tok-5 { background: #fed7aa; }
.tok-special { background: #e5e7eb; border: 1px dashed #6b7280; }
.dark .tok-special { background: #374151; color: #f9fafb; }
progress.tutor-progress { width: 60%; height: 1em; vertical-align: middle; }
/* the chat fills the window's height instead of a fixed box */
#chat { height: calc(100vh - 190px) !important; min-height: 420px; max-height: none !important; }
/* figures at a readable size (Gradio shrinks them to ~300 px); its ⤢ button enlarges, ⤓ downloads */
#chat .message-wrap .image-container, #chat .message-wrap .image-frame,
#chat .message-wrap button:has(> .image-frame) { height: auto !important; max-height: none !important;
  width: auto !important; }
#chat .message-wrap .image-frame img { width: auto !important; height: auto !important; max-width: 100% !important;
  max-height: 75vh !important; object-fit: contain; }
/* tables and code scroll sideways instead of breaking words ("tokenize r", one letter per line) */
#chat .message-content table { display: block; overflow-x: auto; max-width: 100%; }
#chat .message-content td, #chat .message-content th { white-space: nowrap; word-break: keep-all;
  overflow-wrap: normal; }
#chat .message-content pre { overflow-x: auto; white-space: pre; }
@media (max-width: 640px) { #chat { height: calc(100vh - 250px) !important; min-height: 360px; } }
"""


# On a phone-sized screen the lesson outline starts folded so the chat is on the first screen;
# its header (a keyboard-focusable button) opens it.
JS = """
() => {
  if (window.innerWidth < 768) {
    setTimeout(() => document.querySelectorAll('#lessons-panel > button.open, #lessons-panel .label-wrap.open')
      .forEach(b => b.click()), 0);
  }
}
"""


@dataclass
class ChatParts:
    """The chat column's components that events read and write."""

    chatbot: gr.Chatbot
    box: gr.Textbox
    upload: gr.UploadButton
    send: gr.Button
    halt: gr.Button


def build_app(tutor: Tutor | None = None) -> gr.Blocks:
    tutor = tutor or Tutor()
    turns = Turns(tutor)
    lazy_sessions()  # a new Gradio session (each sessionless API call) no longer builds 191 configs
    with gr.Blocks(title="tutor — how language models work") as app:
        # Three columns that wrap on a narrow screen: lessons, chat, tools. Plain columns (not
        # gr.Sidebar, which is fixed to the viewport) so the page also embeds well in a course page.
        with gr.Row(equal_height=False):
            outline = outline_column(tutor)
            parts = chat_column(accepted_suffixes(tutor.registry.tools))
            with gr.Column(scale=1, min_width=240, elem_id="tools-panel"):
                outputs = [parts.chatbot, parts.box, outline]
                palette(tutor.registry, turns.turn, [parts.box, parts.chatbot], outputs)
                panels(tutor)
        wire(turns, parts, outline)
        # Restoring follows a reloaded page's running turn, which mostly waits: no worker limit.
        app.load(turns.restore, None, [parts.chatbot, outline], api_visibility="private", concurrency_limit=None)
        gr.api(turns.chat_api, api_name="chat", concurrency_limit=None)
        api_endpoints(tutor, turns.room)
    app.classroom = turns.room  # mount() installs its middlewares
    return app


def outline_column(tutor: Tutor) -> gr.Markdown:
    with gr.Column(scale=1, min_width=220):
        with gr.Accordion("Lessons", open=True, elem_id="lessons-panel"):
            return gr.Markdown(outline_panel(tutor, None), elem_id="outline")


def chat_column(accept: list[str]) -> ChatParts:
    with gr.Column(scale=3, min_width=340):
        gr.Markdown("## tutor — learn how language models work by running them")
        chatbot = gr.Chatbot(elem_id="chat", label="tutor", sanitize_html=True, buttons=["copy"],
                             placeholder="Type `/help`, or try `/count The cat sat on the mat`.")
        with gr.Row(equal_height=True):
            box = gr.Textbox(placeholder="Ask, type a command such as /help, or say start (Enter sends)",
                             show_label=False, scale=8, min_width=200, elem_id="message",
                             autofocus=True, max_lines=8)
            # only what some tool takes (its File parameters' suffixes)
            upload = gr.UploadButton("Upload file", file_types=accept or None,
                                     file_count="single", type="filepath", scale=1, min_width=90,
                                     size="md", elem_id="upload")
            send = gr.Button("Send", variant="primary", scale=1, min_width=70, size="md", elem_id="send")
            halt = gr.Button("Stop", variant="stop", scale=1, min_width=70, size="md", elem_id="stop")
    return ChatParts(chatbot, box, upload, send, halt)


def panels(tutor: Tutor) -> None:
    with gr.Accordion("Models", open=False, elem_id="models-panel"):
        gr.Markdown(models_markdown(tutor.registry))
    with gr.Accordion("Plugins", open=False, elem_id="plugins-panel"):
        gr.Markdown(plugins_markdown(tutor.registry), elem_id="plugins")


def wire(turns: Turns, parts: ChatParts, outline: gr.Markdown) -> None:
    """Enter, Send, a clicked option and Upload start turns; Stop stops the running one. A
    message sent while a turn runs is sent too (trigger_mode="multiple") and waits in the
    learner's queue, shown as queued. A turn runs in the learner's background worker (its lane
    decides who waits), so these events only follow it: no Gradio worker limit."""
    outputs = [parts.chatbot, parts.box, outline]
    picked = gr.Textbox(visible=False)
    many = {"api_visibility": "private", "trigger_mode": "multiple"}

    def pick(evt: gr.SelectData) -> str:
        return str(evt.value)
    parts.chatbot.option_select(pick, None, picked, api_visibility="private").then(
        turns.turn, [picked, parts.chatbot], outputs, api_visibility="private", concurrency_limit=None)
    parts.box.submit(turns.turn, [parts.box, parts.chatbot], outputs, concurrency_limit=None, **many)
    parts.send.click(turns.turn, [parts.box, parts.chatbot], outputs, concurrency_limit=None, **many)
    parts.upload.upload(turns.attach, [parts.box, parts.upload], parts.box, api_visibility="private",
                        concurrency_limit=None)
    # Stop never queues: no limit, its own group.
    parts.halt.click(turns.stop, None, None, api_visibility="private", concurrency_limit=None,
                     concurrency_id="control")


def _allow_origins(fastapi_app: Any, origins: list[str]) -> None:
    """CORS allowlist: only these origins get Access-Control-Allow-Origin (never an echo of any
    origin). When the site configures CORS itself, Gradio defers to it and so do we."""
    from starlette.middleware.cors import CORSMiddleware
    if any(m.cls is CORSMiddleware for m in getattr(fastapi_app, "user_middleware", [])):
        return
    fastapi_app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_credentials=True,
                               allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"])


def mount(fastapi_app: Any, path: str = "/tutor", tutor: Tutor | None = None, *, mcp: bool = False,
          learner_from: Callable[[Any], str | None] | None = None) -> Any:
    """Mount the tutor inside a FastAPI app (a course site) under `path`, with the safe defaults.

    Behind a reverse proxy that strips a prefix (https://school.example/course/ -> the site's /),
    run the site with the ASGI root path (`uvicorn --root-path /course`, `tutor serve --root-path`):
    the page then builds its URLs as /course/tutor/... . (Gradio's own root_path argument expects
    the prefix inside the request path, so it is not used.)
    learner_from: a function request -> learner id (or None to refuse) for a course login;
    by default, a signed X-Tutor-Learner header/cookie when TUTOR_LEARNER_SECRET is set.
    Besides the page and Gradio's API, `POST {path}/api/ask` answers one message as plain JSON."""
    tutor = tutor or Tutor()
    s = tutor.settings
    if learner_from is None and s.learner_secret is not None:
        learner_from = signed_learner(s.learner_secret.get_secret_value())
    _allow_origins(fastapi_app, s.cors_origins)
    figure_dir = s.home / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_app(tutor)
    blocks.classroom.install(fastapi_app)
    ask_route(fastapi_app, path, tutor, blocks.classroom, learner_from)  # before the mount, which takes all of path
    # Gradio starts every event at once and the lanes (tutor/lanes.py) decide who waits, so its
    # queue only needs room for the lanes' slots and queues; past that it answers "queue full".
    # Each running or waiting turn holds one of Gradio's worker threads.
    lanes = s.lane_quick + s.lane_model + s.lane_long + 3 * s.lane_queue
    blocks.queue(default_concurrency_limit=None, max_size=lanes + 64)
    # After every event Gradio summarises up to 10,000 past events in a pandas DataFrame, for its
    # monitoring page, which is off here (enable_monitoring=False below): 5 ms of CPU per event at
    # first, 19 ms after 10,000 events. This makes it wait for as many events as it can count.
    if hasattr(blocks._queue, "ANAYLTICS_CACHE_FREQUENCY"):  # sic: Gradio's spelling
        blocks._queue.ANAYLTICS_CACHE_FREQUENCY = 2**62
    blocks.max_threads = lanes + 40
    blocks.state_session_capacity = s.web_state_sessions  # Gradio's per-tab state, oldest dropped first
    return gr.mount_gradio_app(
        fastapi_app, blocks, path=path, auth_dependency=learner_from,
        max_file_size=int(s.max_upload_mb * 2**20), allowed_paths=[str(figure_dir)],
        enable_monitoring=False, mcp_server=mcp, show_error=True, ssr_mode=False,
        footer_links=["api"], run_history=False, css=CSS, js=JS)


def server_app(tutor: Tutor | None = None, *, mcp: bool = False) -> Any:
    """The whole site `tutor serve` runs: the tutor at "/" with the safe defaults."""
    from fastapi import FastAPI
    site = FastAPI(title="tutor", docs_url=None, redoc_url=None, openapi_url=None)
    return mount(site, "/", tutor, mcp=mcp)
