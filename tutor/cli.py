"""tutor serve | ask | plugins | models | lessons — the terminal face of the same core."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import chat
from .context import Tutor
from .settings import Settings

def _settings_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", type=Path, help="data dir (TUTOR_HOME)")
    p.add_argument("--plugins-dir", type=Path, action="append", default=[],
                   help="a folder whose .py files are plugins (repeatable)")
    p.add_argument("--plugins", help="comma-separated allowlist of plugins to load (TUTOR_PLUGINS)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="TUTOR_DEVICE")
    p.add_argument("--offline", choices=["auto", "yes", "no"], help="TUTOR_OFFLINE")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {"home": args.home, "plugins": args.plugins, "device": args.device,
                                   "offline": args.offline, "host": getattr(args, "host", None),
                                   "port": getattr(args, "port", None),
                                   "cors_origins": getattr(args, "cors_origins", None),
                                   "max_upload_mb": getattr(args, "max_upload_mb", None)}.items() if v is not None}
    settings = Settings(**overrides)
    if args.plugins_dir:
        settings.plugins_dir = [*settings.plugins_dir, *args.plugins_dir]
    return settings


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tutor", description="A hands-on tutor for how language models work.")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web page", epilog=_resolved(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _settings_flags(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--mcp", action="store_true", help="also expose every tool as an MCP tool (at /gradio_api/mcp/)")
    serve.add_argument("--root-path", help="public URL prefix when behind a reverse proxy, e.g. /tutor")
    serve.add_argument("--cors-origin", action="append", dest="cors_origins",
                       help="an origin allowed to embed/call the app from another site (repeatable; TUTOR_CORS_ORIGINS)")
    serve.add_argument("--max-upload-mb", type=float, help="largest upload accepted (TUTOR_MAX_UPLOAD_MB)")

    ask = sub.add_parser("ask", help="chat turns in the terminal, e.g. tutor ask \"/count hello\" \"and with bert?\"")
    _settings_flags(ask)
    ask.add_argument("message", nargs="+", help="what you would type in the chat; several are one conversation")
    ask.add_argument("--json", action="store_true", help="print the reply's structured data as JSON")
    ask.add_argument("--learner", default="terminal",
                     help="whose state to keep between calls (default: terminal), e.g. for /bpe step")
    ask.add_argument("--open", action="store_true", help="open each figure the reply draws in the image viewer")

    plugins = sub.add_parser("plugins", help="list loaded plugins, what they register, and failures")
    _settings_flags(plugins)
    plugins.add_argument("--json", action="store_true")

    _lessons_parser(sub)
    _models_parser(sub)
    return top


def _lessons_parser(sub) -> None:
    lessons = sub.add_parser("lessons", help="list, show, validate and check the curriculum")
    _settings_flags(lessons)
    lessons.add_argument("--json", action="store_true", help="the list as JSON (id, title, module, order, steps, checks)")
    what = lessons.add_subparsers(dest="lessons_command")
    show = what.add_parser("show", help="print one lesson in the terminal")
    show.add_argument("lesson", help="lesson id or number")
    validate = what.add_parser("validate", help="report every problem with file and line")
    validate.add_argument("paths", nargs="*", type=Path, help="lesson files or folders (default: the curriculum)")
    check = what.add_parser("check", help="run every check step against the real tools")
    check.add_argument("--lesson", action="append", help="only this lesson id (repeatable)")
    check.add_argument("--skip-missing", action="store_true",
                       help="skip checks whose tool is not installed instead of failing them")


def _resolved() -> str:
    try:
        lines = [f"  {k} = {v}" for k, v in Settings().public().items()]
    except Exception as e:  # an invalid TUTOR_* variable: say which
        return f"Settings could not be resolved: {e}"
    return "Resolved settings (TUTOR_* environment variables and flags override them):\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except Exception as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 2
    tutor = Tutor(settings)
    if args.command == "serve":
        return serve(tutor, args.mcp, args.root_path)
    if args.command == "ask":
        return ask(tutor, args.message, args.json, args.learner, args.open)
    if args.command == "plugins":
        return list_plugins(tutor, args.json)
    if args.command == "lessons":
        from .lessons import cli as lessons_cli
        return lessons_cli.run(tutor, args)
    if args.command == "models":
        return models_command(tutor, args)
    raise AssertionError(args.command)


def serve(tutor: Tutor, mcp: bool = False, root_path: str | None = None) -> int:
    import uvicorn

    from .web import server_app

    s = tutor.settings
    print("tutor settings: " + json.dumps(s.public()), flush=True)
    for f in tutor.registry.failures:
        print(f"plugin {f.name} ({f.source}) failed to load: {f.error}", file=sys.stderr)
    for problem in lesson_problems(tutor):
        print(f"lesson problem (the lesson was left out): {problem}", file=sys.stderr)
    print(f"tutor: http://{s.host}:{s.port}/" + ("  (MCP: /gradio_api/mcp/)" if mcp else ""), flush=True)
    uvicorn.run(server_app(tutor, mcp=mcp), host=s.host, port=s.port, root_path=root_path or "",
                log_level="warning", proxy_headers=True)
    return 0


def ask(tutor: Tutor, messages: list[str] | str, as_json: bool, learner: str = "terminal",
        show: bool = False) -> int:
    """Turns in the terminal; several messages are one conversation, so follow-ups ("now with
    bert") work. Progress goes to stderr, replies to stdout; figures are saved and their paths
    printed; the learner's tool state is kept for the next call."""
    from . import terminal

    messages = [messages] if isinstance(messages, str) else messages
    try:
        session = tutor.session(terminal.check_learner(learner))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    session.state.update(terminal.load_state(tutor.settings.home, learner))
    failed = False
    for message in messages:
        if len(messages) > 1 and not as_json:
            print(f"> {message}", flush=True)
        reply = _one_turn(session, message, as_json)
        if as_json:
            print(json.dumps(reply.data if not reply.error else {"error": reply.text}, indent=2, ensure_ascii=False))
        else:
            print(reply.plain() + ("\n" if len(messages) > 1 else ""))
        _show_files(reply, tutor.settings.home / "figures", as_json, show)
        failed = failed or reply.error
    skipped = terminal.save_state(tutor.settings.home, learner, session.state)
    if skipped:
        print(f"note: the state of {', '.join(skipped)} cannot be kept between calls", file=sys.stderr)
    return 1 if failed else 0


def _one_turn(session, message: str, as_json: bool):
    from .reporting import listening

    reply = None
    with listening(_progress_printer()):
        for reply in chat.respond(message, session):
            if not reply.done and not as_json:
                print(reply.plain(), file=sys.stderr, flush=True)
    return reply


def _show_files(reply, figure_dir: Path, as_json: bool, show: bool) -> None:
    for path in _reply_files(reply, figure_dir):
        print(f"{'figure' if path.suffix == '.png' else 'file'}: {path}", file=sys.stderr if as_json else sys.stdout)
        if show:
            import webbrowser
            webbrowser.open(path.resolve().as_uri())


def _reply_files(reply, figure_dir: Path) -> list[Path]:
    """The reply's figure saved as a PNG (the terminal cannot draw it), then its files."""
    out = []
    if reply.figure is not None:
        import uuid
        figure_dir.mkdir(parents=True, exist_ok=True)
        out.append(figure_dir / f"{uuid.uuid4().hex[:12]}.png")
        reply.figure.savefig(out[0], dpi=110, bbox_inches="tight")
    return out + [Path(f) for f in reply.files]


def _progress_printer():
    """A listener printing long work's news to stderr, at most once a second per line of news."""
    import time
    last = {"what": None, "at": 0.0}

    def show(r) -> None:
        now = time.monotonic()
        if r.what != last["what"] or now - last["at"] >= 1.0:
            last.update(what=r.what, at=now)
            print(r.line(), file=sys.stderr, flush=True)
    return show


def list_plugins(tutor: Tutor, as_json: bool) -> int:
    reg = tutor.registry
    if as_json:
        out = {"plugins": [vars(p) for p in reg.plugins], "failures": [vars(f) for f in reg.failures],
               "clashes": reg.clashes, "lesson_problems": [str(p) for p in lesson_problems(tutor)],
               # each tool with the example the palette pre-fills its form from
               "tools": [{"name": t.name, "plugin": t.plugin, "summary": t.summary, "usage": t.usage(),
                          "example": t.example, "parameters": t.json_schema()}
                         for t in sorted(reg.tools.values(), key=lambda t: t.name)]}
        print(json.dumps(out, indent=2, default=str))
        return 0
    for p in reg.plugins:
        print(f"{p.name}  ({p.source})")
        print(f"    hooks: {', '.join(p.hooks) or '-'}")
        for kind, names in p.registered.items():
            print(f"    {kind}: {', '.join(names)}")
    for f in reg.failures:
        print(f"FAILED {f.name}  ({f.source})\n    {f.error}")
    for c in reg.clashes:
        print(f"clash: {c}")
    for problem in lesson_problems(tutor):
        print(f"lesson problem: {problem}")
    return 0


def lesson_problems(tutor: Tutor) -> list:
    """Every lesson that failed to load (a plugin's included), each with file and line, so a
    broken lesson is reported instead of silently left out of the outline."""
    return list(tutor.curriculum.problems)


# ---- tutor models [--json] | tutor models pull ID... | --all ------------------------------------

def _models_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="list the models and whether each is ready; pull prepares them")
    _settings_flags(models)
    models.add_argument("--json", action="store_true", help="a JSON list, one object per model")
    models.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    models.add_argument("ids", nargs="*", help="model ids (or hub ids, or folders) to pull")
    models.add_argument("--all", action="store_true", help="pull every registered model that can be pulled")


def models_command(tutor: Tutor, args: argparse.Namespace) -> int:
    if args.action == "pull":
        return pull_models(tutor, args.ids, args.all)
    if args.ids:
        print("error: `tutor models` lists every model; to prepare some, type `tutor models pull ID`.",
              file=sys.stderr)
        return 2
    rows = tutor.models_overview()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from .models import models_table  # the same table /models shows in the page

    print(models_table(rows).markdown())
    print(tutor.memory_line())
    return 0


def pull_models(tutor: Tutor, ids: list[str], everything: bool) -> int:
    """Fetch, verify and convert each model's files now, with a progress bar (no model is loaded)."""
    from tqdm import tqdm

    from .tools import ToolError

    if not ids and not everything:
        print("error: say which: `tutor models pull smollm2-135m` or `tutor models pull --all`.", file=sys.stderr)
        return 2
    try:
        specs = list(tutor.registry.models.values()) if everything else [tutor.model_spec(i) for i in ids]
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    with tqdm(specs, unit="model", desc="pull", file=sys.stderr) as bar:
        for spec in bar:
            bar.set_postfix_str(spec.id)
            if spec.prepare is None:
                bar.write(f"{spec.id}: nothing to fetch (built locally)")
                continue
            status = spec.locate(tutor.settings).status if spec.locate else "?"
            if everything and status == "unavailable":  # --all skips what cannot come here
                bar.write(f"{spec.id}: skipped, {spec.locate(tutor.settings).detail}")
                continue
            try:
                where = spec.prepare(tutor.settings)
                bar.write(f"{spec.id}: ready ({where})")
            except Exception as e:  # one failure must not stop the others
                failed.append(spec.id)
                bar.write(f"{spec.id}: FAILED: {e}")
    if failed:
        print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
