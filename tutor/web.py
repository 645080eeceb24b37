"""The Gradio page: chat, tool palette, plugin list, lesson outline. It only translates.

`build_app(tutor)` returns the Blocks; `mount(fastapi_app, path)` puts it inside a course site.
Everything a reply means is decided in chat.py; the pure functions here turn a Reply into chat
messages and a palette form into a command line, and are unit-tested without a server.
"""

from __future__ import annotations

import html
import shlex
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from . import chat, lessons
from .context import Tutor
from .plugins import Registry
from .tools import Param, Reply, Span, Tool

PALETTE = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa"]


def spans_html(spans: list[Span]) -> str:
    """Coloured token spans; whitespace made visible. All text is escaped."""
    out = []
    for s in spans:
        shown = html.escape(s.text).replace(" ", "␣").replace("\n", "↵<br>").replace("\t", "⇥")
        title = html.escape(s.title or (f"id {s.id}" if s.id is not None else ""), quote=True)
        colour = "#e5e7eb" if s.special else PALETTE[s.group % len(PALETTE)]
        border = "border:1px dashed #6b7280;" if s.special else ""
        out.append(f'<span title="{title}" style="background:{colour};{border}color:#111;'
                   f'padding:1px 2px;margin:1px;border-radius:3px;font-family:monospace">{shown}</span>')
    return "".join(out)


def reply_markdown(reply: Reply) -> str:
    parts = []
    if reply.text:
        parts.append(("⚠️ " if reply.error else "") + reply.text)
    if reply.spans:
        parts.append(spans_html(reply.spans))
    if reply.table:
        parts.append(reply.table.markdown())
    if reply.progress is not None and not reply.done:
        parts.append(f"`{'█' * int(reply.progress * 20):<20}` {reply.progress:.0%}")
    return "\n\n".join(parts) or "(no reply)"


def reply_messages(reply: Reply, figure_dir: Path) -> list[dict[str, Any]]:
    """One Reply -> assistant messages: the markdown, then a picture per figure or file."""
    messages = [{"role": "assistant", "content": reply_markdown(reply)}]
    if reply.figure is not None:
        figure_dir.mkdir(parents=True, exist_ok=True)
        path = figure_dir / f"{uuid.uuid4().hex}.png"
        reply.figure.savefig(path, dpi=110, bbox_inches="tight")
        messages.append({"role": "assistant", "content": {"path": str(path)}})
    for f in reply.files:
        messages.append({"role": "assistant", "content": {"path": str(f)}})
    return messages


def message_text(content: Any) -> str:
    """History content from the page (content blocks) or from a client (plain strings)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or content.get("value") or ""
    if isinstance(content, (list, tuple)):
        return "".join(message_text(c) for c in content)
    return ""


def normalize_history(history: list | None) -> list[dict[str, Any]]:
    """Chat history from the page (content blocks) or a client (plain strings) -> plain messages."""
    out = []
    for m in history or []:
        content = m.get("content") if isinstance(m, dict) else m
        files = [c for c in content if isinstance(c, dict) and c.get("type") == "file"] \
            if isinstance(content, list) else []
        if files:
            out += [{"role": m["role"], "content": {"path": f["file"]["path"]}} for f in files]
        else:
            out.append({"role": m.get("role", "user"), "content": message_text(content)})
    return out


def palette_command(tool: Tool, values: list[Any]) -> str:
    """Palette form values -> the command line the learner could have typed."""
    words, rest = [f"/{tool.name}"], ""
    for p, v in zip(tool.params, values):
        if v is None or v == "" or (p.type is bool and not v):
            continue
        if p.rest:
            rest = str(v)
        elif p.option:
            flag = f"--{p.name.replace('_', '-')}"
            words += [flag] if p.type is bool else [flag, shlex.quote(_word(p, v))]
        else:
            words.append(shlex.quote(_word(p, v)))
    return " ".join(words) + (" " + rest if rest else "")


def _word(p: Param, v: Any) -> str:
    if p.type is int:
        return str(int(v))
    if p.type is list and isinstance(v, (list, tuple)):
        return ",".join(v)
    return str(v)


def plugins_markdown(reg: Registry) -> str:
    lines = ["| plugin | from | registers |", "|---|---|---|"]
    for p in reg.plugins:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registered.items()) or ", ".join(p.hooks)
        lines.append(f"| {p.name} | {p.source} | {what} |")
    for f in reg.failures:
        lines.append(f"| ❌ {f.name} | {f.source} | failed: {html.escape(f.error)} |")
    return "\n".join(lines)


def _input(p: Param, reg: Registry) -> gr.components.Component:
    label = (f"--{p.name}" if p.option else p.name) + (f" — {p.help}" if p.help else "")
    default = None if p.required else p.default
    if p.type is bool:
        return gr.Checkbox(label=label, value=bool(default))
    choices = list(p.choices) if isinstance(p.choices, tuple) else (
        reg.names(p.choices) if isinstance(p.choices, str) else None)
    if choices:
        return gr.Dropdown(choices=choices, value=default, label=label, allow_custom_value=True)
    if p.type in (int, float):
        return gr.Number(value=default, label=label, precision=0 if p.type is int else None)
    return gr.Textbox(value=default or "", label=label, lines=3 if p.rest else 1)


def build_app(tutor: Tutor | None = None) -> gr.Blocks:
    tutor = tutor or Tutor()
    reg = tutor.registry
    figure_dir = tutor.settings.home / "figures"
    cancels: dict[str, threading.Event] = {}

    def turn(message: str, history: list, learner: str | None) -> Iterator[tuple[list, str, str]]:
        learner = learner or uuid.uuid4().hex
        history = normalize_history(history) + [{"role": "user", "content": message}]
        session = tutor.session(learner)
        cancel = cancels[learner] = threading.Event()
        base = len(history)
        for reply in chat.respond(message, session, cancel):
            history = history[:base] + reply_messages(reply, figure_dir)
            yield history, "", learner

    def stop(learner: str | None) -> None:
        if learner and learner in cancels:
            cancels[learner].set()

    with gr.Blocks(title="tutor — how language models work") as app:
        learner = gr.BrowserState(None, storage_key="tutor-learner")
        gr.Markdown("## tutor — learn how language models work by running them")
        with gr.Row():
            with gr.Column(scale=1, min_width=200):
                gr.Markdown("### Lessons", elem_id="outline-title")
                outline = gr.Markdown(lessons.outline_for(tutor, None), elem_id="outline")
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(elem_id="chat", height=520, label="tutor",
                                     placeholder="Type `/help`, or try `/count The cat sat on the mat`.")
                with gr.Row():
                    box = gr.Textbox(placeholder="Ask, type a command such as /help, or say start",
                                     show_label=False, scale=5, elem_id="message", autofocus=True)
                    send = gr.Button("Send", variant="primary", scale=1)
                    halt = gr.Button("Stop", scale=1)
            with gr.Column(scale=1, min_width=240):
                gr.Markdown("### Tools")
                for tool in sorted(reg.tools.values(), key=lambda t: t.name):
                    with gr.Accordion(f"/{tool.name}", open=False):
                        gr.Markdown(tool.summary)
                        inputs = [_input(p, reg) for p in tool.params]
                        run = gr.Button(f"Run /{tool.name}")
                        cmd = gr.Textbox(visible=False)
                        run.click(lambda *v, t=tool: palette_command(t, list(v)), inputs, cmd,
                                  api_visibility="private").then(
                            turn, [cmd, chatbot, learner], [chatbot, box, learner], api_visibility="private")
                with gr.Accordion("Plugins", open=False):
                    gr.Markdown(plugins_markdown(reg), elem_id="plugins")
        events = [box.submit(turn, [box, chatbot, learner], [chatbot, box, learner], api_visibility="private"),
                  send.click(turn, [box, chatbot, learner], [chatbot, box, learner], api_visibility="private")]
        halt.click(stop, [learner], None, cancels=events, api_visibility="private")
        # The outline follows the learner: shown on load, refreshed after every turn.
        for event in events:
            event.then(lambda who: lessons.outline_for(tutor, who), [learner], outline, api_visibility="private")
        app.load(lambda who: lessons.outline_for(tutor, who), [learner], outline, api_visibility="private")
        # API endpoints for clients and tests. /chat is the page's own turn with the history as
        # plain JSON, so a client may send plain strings; /ask returns the final reply's data.
        api_in, api_learner, api_out = gr.Textbox(visible=False), gr.Textbox(visible=False), gr.JSON(visible=False)
        api_history = gr.JSON(visible=False)
        gr.Button(visible=False).click(turn, [api_in, api_history, api_learner], [api_history, api_in, api_learner],
                                       api_name="chat")
        gr.Button(visible=False).click(lambda m, who: _api(tutor, m, who), [api_in, api_learner], api_out,
                                       api_name="ask")
    return app


def _api(tutor: Tutor, message: str, learner: str | None) -> dict:
    reply = chat.final(message, tutor.session(learner or None))
    return {"text": reply_markdown(reply), "data": reply.data, "error": reply.error}


def mount(fastapi_app: Any, path: str = "/tutor", tutor: Tutor | None = None) -> Any:
    """Mount the tutor inside a FastAPI app (a course site) under `path`."""
    return gr.mount_gradio_app(fastapi_app, build_app(tutor), path=path)
