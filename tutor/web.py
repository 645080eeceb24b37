"""The Gradio page: chat, lesson outline, tool palette, models and plugins. It only translates.

`build_app(tutor)` returns the Blocks; `mount(fastapi_app, path)` puts it inside a course site with
the safe defaults (CORS allowlist, upload limit, no file routes outside the app's figures, no
analytics); `server_app(tutor)` is the same thing as a whole site for `tutor serve`.
Everything a reply means is decided in chat.py; the pure functions here turn a Reply into chat
messages, a palette form into a command line, and a learner's text into safe markdown. They are
unit-tested without a server.
"""

from __future__ import annotations

import os

# Safe default: no usage analytics leave the machine (a deployer may opt in explicitly).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import hashlib  # noqa: E402
import hmac  # noqa: E402
import html  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

import gradio as gr  # noqa: E402
import nh3  # noqa: E402

from . import chat, commands  # noqa: E402
from .context import Tutor  # noqa: E402
from .plugins import Registry  # noqa: E402
from .tools import Param, Reply, Span, Tool  # noqa: E402

PALETTE_SIZE = 6  # colour groups for token spans; the colours live in CSS (light and dark)
FILE_PARAMS = {"file", "path", "corpus", "data_file"}  # parameters that name a file to read
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}  # no .svg: it can carry script
LEARNER_HEADER, LEARNER_COOKIE = "X-Tutor-Learner", "tutor_learner"

# ---- safe markdown -----------------------------------------------------------------------------

# HTML a tool or lesson may use inside markdown; everything else is stripped by nh3 (ammonia).
ALLOWED_TAGS = {"span", "br", "progress", "b", "i", "em", "strong", "code", "pre", "sub", "sup", "kbd",
                "details", "summary", "p", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
                "td", "a", "img", "div", "small", "mark"}
ALLOWED_ATTRS = {"span": {"class", "title"}, "progress": {"value", "max", "class", "aria-label"},
                 "a": {"href", "title"}, "img": {"src", "alt", "title"}, "div": {"class"},
                 "td": {"align"}, "th": {"align"}, "code": {"class"}}
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)  # markdown code shows its content as text


def _outside_code(text: str, clean: Callable[[str], str]) -> str:
    """Apply `clean` to text outside code spans and fences. Inside code, markdown shows `<b>` as
    the characters < b >, so it is safe as is and must not become `&lt;b&gt;` on screen."""
    codes: list[str] = []

    def hold(m: re.Match) -> str:
        codes.append(m.group(0))
        return f"TUTORCODE{len(codes) - 1}X"

    cleaned = clean(_CODE.sub(hold, text))
    return re.sub(r"TUTORCODE(\d+)X", lambda m: codes[int(m.group(1))], cleaned)


def sanitize_markdown(text: str) -> str:
    """Markdown from a tool or lesson, with any HTML outside the allowlist removed (script, style,
    event handlers, javascript: links). `>` at a line start stays a markdown quote."""
    def clean(part: str) -> str:
        out = nh3.clean(part, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS,
                        url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")
        return re.sub(r"(?m)^((?:&gt;\s?)+)", lambda m: m.group(1).replace("&gt;", ">"), out)
    return _outside_code(text, clean)


def escape_learner_text(text: str) -> str:
    """What a learner typed, shown back as text: `<script>` appears as the characters, never runs."""
    return _outside_code(text, lambda part: html.escape(part, quote=False))


# ---- replies -> chat messages ------------------------------------------------------------------

def spans_html(spans: list[Span]) -> str:
    """Coloured token spans (colours by CSS class, so both themes work); whitespace made visible."""
    out = []
    for s in spans:
        shown = html.escape(s.text).replace(" ", "␣").replace("\n", "↵<br>").replace("\t", "⇥")
        title = html.escape(s.title or (f"id {s.id}" if s.id is not None else ""), quote=True)
        kind = "tok-special" if s.special else f"tok-{s.group % PALETTE_SIZE}"
        out.append(f'<span class="tok {kind}" title="{title}">{shown}</span>')
    return '<div class="tokens">' + "".join(out) + "</div>"


def progress_html(progress: float) -> str:
    p = min(max(float(progress), 0.0), 1.0)
    return (f'<progress class="tutor-progress" value="{p:.3f}" max="1" aria-label="progress"></progress>'
            f" {p:.0%}")


def reply_markdown(reply: Reply, buttons_as_text: bool = True) -> str:
    """One Reply as safe markdown: text, token spans, table, progress bar, offered commands
    (as text for API clients; the page shows them as clickable options instead)."""
    parts = []
    if reply.text:
        parts.append(("⚠️ " if reply.error else "") + sanitize_markdown(reply.text))
    if reply.spans:
        parts.append(spans_html(reply.spans))
    if reply.table:
        parts.append(sanitize_markdown(reply.table.markdown()))
    if reply.progress is not None and not reply.done:
        parts.append(progress_html(reply.progress))
    if reply.buttons and buttons_as_text:
        parts.append("Try: " + " · ".join(f"`{b}`" for b in reply.buttons))
    return "\n\n".join(parts) or "(no reply)"


def reply_messages(reply: Reply, figure_dir: Path) -> list[dict[str, Any]]:
    """One Reply -> assistant messages: the markdown, then a picture per figure or image file.

    Pictures are written (or copied) into `figure_dir`, the one folder the file route serves."""
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": reply_markdown(reply, buttons_as_text=False)}]
    if reply.buttons and reply.done:  # commands offered to the learner: one click runs them
        messages[0]["options"] = [{"value": b, "label": b} for b in reply.buttons]
    if reply.figure is not None:
        figure_dir.mkdir(parents=True, exist_ok=True)
        path = figure_dir / f"{uuid.uuid4().hex}.png"
        reply.figure.savefig(path, dpi=110, bbox_inches="tight")
        messages.append({"role": "assistant", "content": {"path": str(path)}})
    for f in reply.files:
        f = Path(f)
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            figure_dir.mkdir(parents=True, exist_ok=True)
            copy = figure_dir / f"{uuid.uuid4().hex}{f.suffix.lower()}"
            shutil.copyfile(f, copy)
            messages.append({"role": "assistant", "content": {"path": str(copy)}})
        else:  # other files (a saved model, a vocabulary) stay on the server; say where
            messages.append({"role": "assistant", "content": f"Saved on the server: `{f.name}`"})
    return messages


def message_text(content: Any) -> str:
    """History content from the page (content blocks) or from a client (plain strings)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if content.get("type") in (None, "text"):
            return content.get("text") or content.get("value") or ""
        return ""
    if isinstance(content, (list, tuple)):
        return "".join(message_text(c) for c in content)
    return ""


def normalize_history(history: Any) -> list[dict[str, Any]]:
    """Chat history as the page or a client sends it -> [{"role", "content"}] with text content
    as a string and files as {"path": ...}. Accepts content blocks, plain strings and
    Gradio's message objects; drops anything without a role."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role not in ("user", "assistant"):
            continue
        blocks = content if isinstance(content, (list, tuple)) else [content]
        for b in blocks:
            path = _file_path(b)
            if path:
                out.append({"role": role, "content": {"path": path}})
            else:
                text = message_text(b)
                if text:
                    out.append({"role": role, "content": text})
    return out


def _file_path(block: Any) -> str | None:
    if isinstance(block, dict):
        f = block.get("file") if block.get("type") == "file" else block
        if isinstance(f, dict) and isinstance(f.get("path"), str):
            return f["path"]
    return getattr(getattr(block, "file", None), "path", None) if not isinstance(block, (str, dict)) else None


# ---- palette and uploads ----------------------------------------------------------------------

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
    if isinstance(v, dict) and "path" in v:  # a gr.File value
        return str(v["path"])
    return str(v)


def upload_dir() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR); the only files a web learner can name."""
    from gradio import utils
    return Path(utils.get_upload_folder()).resolve()


def is_uploaded(path: str | Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(upload_dir())
    except (OSError, ValueError):
        return False


def attach_upload(box: str, path: str | None, tools: dict[str, Tool]) -> str:
    """An uploaded file becomes `--file PATH` right after the command in the message box
    (options come before free text). An empty box gets the first tool that takes a file."""
    if not path:
        return box
    if not is_uploaded(path):
        raise gr.Error("Only files uploaded through this page can be used.")
    arg = f"--file {shlex.quote(str(path))}"
    box = (box or "").strip()
    if box.startswith("/"):
        head, _, tail = box.partition(" ")
        return f"{head} {arg}" + (f" {tail}" if tail else "")
    takers = [t.name for t in tools.values() if any(p.name == "file" and p.option for p in t.params)]
    preferred = [n for n in ("finetune", "train-tokenizer") if n in takers] + takers
    return (f"/{preferred[0]} " if preferred else "") + arg + (f" {box}" if box else "")


def check_file_args(message: str, tutor: Tutor) -> str | None:
    """In the web app a tool may only read uploaded files: a typed server path is refused.
    Returns the refusal text, or None when the command is fine (or not a command)."""
    text = message.strip()
    if not text.startswith("/"):
        return None
    try:
        call = commands.parse(text, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
    except Exception:  # parse problems are answered by chat.respond with a clear message
        return None
    for p in call.tool.params:
        value = call.args.get(p.name)
        if p.name in FILE_PARAMS and isinstance(value, str) and value and not is_uploaded(value):
            return (f"`--{p.name}` must be a file uploaded through this page, not a path on the server "
                    f"(got `{Path(value).name}`). Use the Upload file button; it fills in `--{p.name}` for you.")
    return None


def _input(p: Param, reg: Registry, tool: str = "") -> gr.components.Component:
    label = (f"--{p.name}" if p.option else p.name) + (f" — {p.help}" if p.help else "")
    default = None if p.required else p.default
    elem = {"elem_id": f"palette-{tool}-{p.name}"}
    if p.name in FILE_PARAMS and p.type is str:
        return gr.File(label=label, file_count="single", type="filepath", **elem)
    if p.type is bool:
        return gr.Checkbox(label=label, value=bool(default), **elem)
    choices = list(p.choices) if isinstance(p.choices, tuple) else (
        reg.names(p.choices) if isinstance(p.choices, str) else None)
    if choices:
        return gr.Dropdown(choices=choices, value=default, label=label, allow_custom_value=True, **elem)
    if p.type in (int, float):
        return gr.Number(value=default, label=label, precision=0 if p.type is int else None,
                         minimum=p.min, maximum=p.max, **elem)
    return gr.Textbox(value=default or "", label=label, lines=3 if p.rest else 1, **elem)


# ---- side panels -------------------------------------------------------------------------------

def plugins_markdown(reg: Registry) -> str:
    lines = ["| plugin | from | registers |", "|---|---|---|"]
    for p in reg.plugins:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registered.items()) or ", ".join(p.hooks)
        lines.append(f"| {p.name} | {p.source} | {what} |")
    for f in reg.failures:
        lines.append(f"| ❌ {f.name} | {f.source} | failed: {html.escape(f.error)} |")
    return sanitize_markdown("\n".join(lines))


def models_markdown(reg: Registry) -> str:
    lines = ["| model | what it is | parameters |", "|---|---|---|"]
    for spec in reg.models.values():
        n = f"{spec.parameters / 1e6:,.0f} M" if getattr(spec, "parameters", None) else "?"
        lines.append(f"| `{spec.id}` | {spec.label} | {n} |")
    toks = ", ".join(f"`{n}`" for n in reg.names("tokenizers"))
    return sanitize_markdown("\n".join(lines) + (f"\n\nTokenizers: {toks}" if toks else ""))


def outline_markdown(tutor: Tutor, learner: str | None) -> str:
    """The lesson outline and this learner's progress, from the lessons engine (tutor/lessons.py,
    `outline_for(tutor, learner) -> markdown`); until it is installed, say so."""
    try:
        from . import lessons  # optional until the lessons engine lands
    except ImportError:
        return "Lessons appear here once the lessons engine is installed. Meanwhile try `/help`."
    outline_for = getattr(lessons, "outline_for", None)
    if outline_for is None:
        return "Lessons are installed but provide no outline."
    try:
        return sanitize_markdown(str(outline_for(tutor, learner)))
    except Exception as e:  # a broken lesson file must not break the page
        return f"⚠️ The lesson outline could not be built: {html.escape(str(e))}"


# ---- learner identity --------------------------------------------------------------------------

def sign_learner(secret: str, learner_id: str) -> str:
    """What a course site sends to vouch for a learner: `ID.HMAC` (header X-Tutor-Learner or cookie
    tutor_learner). Only the course server, which knows the secret, can make one."""
    mac = hmac.new(secret.encode(), learner_id.encode(), hashlib.sha256).hexdigest()
    return f"{learner_id}.{mac}"


def verify_learner(secret: str, value: str | None) -> str | None:
    """The learner id inside a signed value, or None when it is missing or forged."""
    if not value or "." not in value:
        return None
    learner_id, _, mac = value.rpartition(".")
    good = hmac.new(secret.encode(), learner_id.encode(), hashlib.sha256).hexdigest()
    return learner_id if learner_id and hmac.compare_digest(mac, good) else None


def signed_learner(secret: str) -> Callable[[Any], str | None]:
    """A Gradio `auth_dependency`: the learner named by the course login, or None (refused, 401)."""
    def learner_of(request: Any) -> str | None:
        value = request.headers.get(LEARNER_HEADER) or request.cookies.get(LEARNER_COOKIE)
        return verify_learner(secret, value)
    return learner_of


def _learner(browser_id: str | None, request: gr.Request | None) -> str:
    """The course login's learner when there is one; else this browser's own random id."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return f"user:{user}"
    if browser_id and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", browser_id):  # never "user:..." (a login)
        return browser_id
    return uuid.uuid4().hex


# ---- the page ----------------------------------------------------------------------------------

CSS = """
.tokens { line-height: 2; }
.tok { color: #111; padding: 1px 2px; margin: 1px; border-radius: 3px; font-family: monospace; }
.tok-0 { background: #fde68a; } .tok-1 { background: #bfdbfe; } .tok-2 { background: #bbf7d0; }
.tok-3 { background: #fbcfe8; } .tok-4 { background: #ddd6fe; } .tok-5 { background: #fed7aa; }
.tok-special { background: #e5e7eb; border: 1px dashed #6b7280; }
.dark .tok-special { background: #374151; color: #f9fafb; }
progress.tutor-progress { width: 60%; height: 1em; vertical-align: middle; }
#chat { min-height: 60vh; }
@media (max-width: 640px) { #chat { min-height: 55vh; } }
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


class _Jobs:
    """Per-learner count of running turns, so one learner cannot fill the server's queue."""

    def __init__(self, limit: int):
        self.limit, self.running, self.lock = limit, {}, threading.Lock()

    def start(self, learner: str) -> bool:
        with self.lock:
            if self.running.get(learner, 0) >= self.limit:
                return False
            self.running[learner] = self.running.get(learner, 0) + 1
            return True

    def end(self, learner: str) -> None:
        with self.lock:
            self.running[learner] -= 1


def build_app(tutor: Tutor | None = None) -> gr.Blocks:
    tutor = tutor or Tutor()
    reg = tutor.registry
    figure_dir = tutor.settings.home / "figures"
    cancels: dict[str, threading.Event] = {}
    jobs = _Jobs(tutor.settings.learner_concurrent_jobs)

    def saved(learner: str) -> list:
        return tutor.session(learner).state.setdefault("web", {}).setdefault("history", [])

    def converse(message: str, history: Any, learner: str) -> Iterator[list]:
        """One chat turn: the learner's message (escaped), then the history as each reply streams."""
        message = message or ""
        history = normalize_history(history)
        history.append({"role": "user", "content": escape_learner_text(message) or "(empty)"})
        base = len(history)
        refused = check_file_args(message, tutor)
        if refused or not jobs.start(learner):
            text = refused or (f"You already have {jobs.limit} turns running. Wait for one to finish, "
                               "or press Stop.")
            yield history + [{"role": "assistant", "content": "⚠️ " + text}]
            return
        cancel = cancels[learner] = threading.Event()
        try:
            yield history
            for reply in chat.respond(message, tutor.session(learner), cancel):
                history = history[:base] + reply_messages(reply, figure_dir)
                yield history
        except Exception as e:  # the page must never freeze on a bug in this layer
            history.append({"role": "assistant", "content": f"⚠️ The page could not show the reply: {e}"})
            yield history
        finally:
            jobs.end(learner)
            saved(learner)[:] = history

    def turn(message: str, history: list, browser_id: str | None,
             request: gr.Request = None) -> Iterator[tuple[Any, str, str, Any]]:
        learner = _learner(browser_id, request)
        for h in converse(message, history, learner):
            yield h, "", learner, gr.skip()
        yield gr.skip(), "", learner, outline_markdown(tutor, learner)

    def chat_api(message: str, history: list | None = None, learner: str = "",
                 request: gr.Request = None) -> tuple[list, str, str]:
        """A chat turn for clients: history as [{"role", "content"}] where content is a string or
        content blocks ([{"type": "text", "text": ...}]). Returns (new history with string content,
        "" for the message box, the learner id to send next time).

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            history: the conversation so far (may be empty)
            learner: a learner id (letters, digits, - and _) to keep state between calls; empty for a new one
        """
        who = _learner(learner or None, request)
        out: list = []
        for out in converse(message, history, who):
            pass
        return out, "", who

    def stop(browser_id: str | None, request: gr.Request = None) -> None:
        learner = _learner(browser_id, request)
        if learner in cancels:
            cancels[learner].set()

    def restore(browser_id: str | None, request: gr.Request = None) -> tuple[Any, Any, str]:
        """On page load: this learner's conversation and outline, kept across reloads. A new
        browser gets its id from its first turn; nothing is overwritten if that turn came first."""
        if not browser_id and not getattr(request, "username", None):
            return gr.skip(), gr.skip(), outline_markdown(tutor, None)
        learner = _learner(browser_id, request)
        history = list(saved(learner))
        return (history if history else gr.skip()), learner, outline_markdown(tutor, learner)

    with gr.Blocks(title="tutor — how language models work") as app:
        learner = gr.BrowserState(None, storage_key="tutor-learner")
        # Three columns that wrap on a narrow screen: lessons, chat, tools. Plain columns (not
        # gr.Sidebar, which is fixed to the viewport) so the page also embeds well in a course page.
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=220):
                with gr.Accordion("Lessons", open=True, elem_id="lessons-panel"):
                    outline = gr.Markdown(outline_markdown(tutor, None), elem_id="outline")
            with gr.Column(scale=3, min_width=340):
                gr.Markdown("## tutor — learn how language models work by running them")
                chatbot = gr.Chatbot(elem_id="chat", label="tutor", sanitize_html=True, buttons=["copy"],
                                     placeholder="Type `/help`, or try `/count The cat sat on the mat`.")
                with gr.Row(equal_height=True):
                    box = gr.Textbox(placeholder="Ask, type a command such as /help, or say start (Enter sends)",
                                     show_label=False, scale=8, min_width=200, elem_id="message",
                                     autofocus=True, max_lines=8)
                    upload = gr.UploadButton("Upload file", file_types=[".txt", ".md", ".json", ".jsonl"],
                                             file_count="single", type="filepath", scale=1, min_width=90,
                                             size="md", elem_id="upload")
                    send = gr.Button("Send", variant="primary", scale=1, min_width=70, size="md", elem_id="send")
                    halt = gr.Button("Stop", variant="stop", scale=1, min_width=70, size="md", elem_id="stop")
            with gr.Column(scale=1, min_width=240, elem_id="tools-panel"):
                gr.Markdown("### Tools")
                palette_events = []
                for tool in sorted(reg.tools.values(), key=lambda t: t.name):
                    with gr.Accordion(f"/{tool.name}", open=False, elem_id=f"palette-{tool.name}"):
                        gr.Markdown(sanitize_markdown(tool.summary + (f"\n\n`{tool.example}`" if tool.example else "")))
                        inputs = [_input(p, reg, tool.name) for p in tool.params]
                        run = gr.Button(f"Run /{tool.name}", elem_id=f"run-{tool.name}")
                        cmd = gr.Textbox(visible=False)
                        palette_events.append(
                            run.click(lambda *v, t=tool: palette_command(t, list(v)), inputs, cmd,
                                      api_visibility="private").then(
                                turn, [cmd, chatbot, learner], [chatbot, box, learner, outline],
                                api_visibility="private"))
                with gr.Accordion("Models", open=False, elem_id="models-panel"):
                    gr.Markdown(models_markdown(reg))
                with gr.Accordion("Plugins", open=False, elem_id="plugins-panel"):
                    gr.Markdown(plugins_markdown(reg), elem_id="plugins")
        outputs = [chatbot, box, learner, outline]
        picked = gr.Textbox(visible=False)

        def pick(evt: gr.SelectData) -> str:
            return str(evt.value)
        option_event = chatbot.option_select(pick, None, picked, api_visibility="private").then(
            turn, [picked, chatbot, learner], outputs, api_visibility="private")
        events = [box.submit(turn, [box, chatbot, learner], outputs, api_visibility="private"),
                  send.click(turn, [box, chatbot, learner], outputs, api_visibility="private")]
        upload.upload(lambda b, f: attach_upload(b, f, reg.tools), [box, upload], box, api_visibility="private")
        halt.click(stop, [learner], None, cancels=events + palette_events + [option_event], api_visibility="private")
        app.load(restore, [learner], [chatbot, learner, outline], api_visibility="private")
        gr.api(chat_api, api_name="chat")
        _api_endpoints(tutor)
    return app


def _api_endpoints(tutor: Tutor) -> None:
    """`/ask` for clients and tests, and one endpoint per tool (what `--mcp` lists as MCP tools)."""
    def ask(message: str, learner: str = "", request: gr.Request = None) -> dict:
        """One message in, the final reply out: {"text": markdown, "data": facts, "error": bool}.

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            learner: a learner id to keep state between calls (optional)
        """
        who = _learner(learner or None, request)
        refused = check_file_args(message, tutor)
        reply = Reply(text=refused, error=True) if refused else chat.final(message, tutor.session(who))
        return {"text": reply_markdown(reply), "data": reply.data, "error": reply.error}

    gr.api(ask, api_name="ask")
    for tool in tutor.registry.tools.values():
        gr.api(tool_endpoint(tool, tutor), api_name=tool.name.replace("-", "_"),
               api_description=tool.summary + ("\n\n" + tool.description if tool.description else ""))


_PY = {str: str, int: int, float: float, bool: bool, list: list[str]}


def tool_endpoint(tool: Tool, tutor: Tutor) -> Callable[..., str]:
    """A function whose signature mirrors the tool's schema (so Gradio's API and MCP listing show
    the same parameters as Tool.json_schema()); it builds the command line and runs one turn."""
    def run(*args: Any, request: gr.Request = None, **kwargs: Any) -> str:
        bound = sig.bind_partial(*args, **kwargs)
        values = [bound.arguments.get(p.name) for p in tool.params]
        line = palette_command(tool, values)
        refused = check_file_args(line, tutor)
        reply = Reply(text=refused, error=True) if refused else chat.final(line, tutor.session(
            _learner(None, request) if getattr(request, "username", None) else "mcp"))
        out = reply.plain()
        if reply.data:
            out += "\n\ndata: " + json.dumps(reply.data, ensure_ascii=False, default=str)
        return ("error: " if reply.error else "") + out

    params = []
    for p in tool.params:
        default = inspect.Parameter.empty if p.required else (p.default if p.default is not None else "")
        if p.type is bool and default is inspect.Parameter.empty:
            default = False
        params.append(inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=default, annotation=_PY[p.type]))
    sig = inspect.Signature(params, return_annotation=str)
    run.__signature__ = sig  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: _PY[p.type] for p in tool.params} | {"return": str}
    run.__name__ = tool.name.replace("-", "_")
    args_doc = "\n".join(f"    {p.name}: {p.help or p.type_name}" for p in tool.params)
    run.__doc__ = f"{tool.summary}\n\nArgs:\n{args_doc}\n" if tool.params else tool.summary
    return run


# ---- serving -----------------------------------------------------------------------------------

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
    by default, a signed X-Tutor-Learner header/cookie when TUTOR_LEARNER_SECRET is set."""
    tutor = tutor or Tutor()
    s = tutor.settings
    if learner_from is None and s.learner_secret is not None:
        learner_from = signed_learner(s.learner_secret.get_secret_value())
    _allow_origins(fastapi_app, s.cors_origins)
    figure_dir = s.home / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    blocks = build_app(tutor).queue(default_concurrency_limit=8)
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
