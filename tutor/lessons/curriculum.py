"""The curriculum: lesson files loaded with line numbers, teaching order, the prerequisite
graph, and the outline (pure: the web page and the terminal both use it). Every problem carries
its file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import yaml
from pydantic import ValidationError

from ..plugins import builtin_dir
from .progress import Progress
from .schema import MODULE_TITLES, MODULES, Lesson

if TYPE_CHECKING:
    from ..plugins import Registry
# ---- loading with line numbers -------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    kind: str = "error"  # "unknown tool" is kept apart so a branch without a tool can tell

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Source:
    """Where a lesson came from: its file, the plugin that shipped it, and line numbers."""

    path: Path
    plugin: str
    lines: dict[tuple, int]  # YAML path (keys and indexes) -> line number (1-based)

    def line(self, loc: Iterable[Any]) -> int:
        """The line of the deepest part of `loc` that exists in the file."""
        loc = tuple("try" if p == "try_" else p for p in loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # what yaml.safe_load uses, in C when available


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_map(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def load_file(path: Path, plugin: str = "built-in") -> tuple[Lesson | None, Source, list[Problem]]:
    """Parse one lesson file. Returns the lesson (None if invalid) and every problem found."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # Parse once: the node tree gives line numbers, the same loader builds the plain data
        # (safe_load's constructor; libyaml's C parser when installed).
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError) as e:
        return None, Source(path, plugin, {}), [Problem(name, 1, f"cannot read the file: {e}")]
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", 0) + 1
        return None, Source(path, plugin, {}), [Problem(name, line, f"not valid YAML: {e}")]
    source = Source(path, plugin, _line_map(node) if node is not None else {})
    if not isinstance(raw, dict):
        return None, source, [Problem(name, 1, "a lesson file is a mapping with id, title, module, order, steps")]
    try:
        return Lesson.model_validate(raw), source, []
    except ValidationError as e:
        return None, source, [Problem(name, source.line(err["loc"]), _message(err)) for err in e.errors()]


def _message(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]).replace("try_", "try")
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if err["type"] == "missing":
        return f"missing key {where!r}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


# ---- the curriculum ------------------------------------------------------------------------

@dataclass
class Curriculum:
    """Every valid lesson in teaching order, with where each came from and the load problems."""

    lessons: list[Lesson] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, lesson_id: str) -> Lesson | None:
        return next((l for l in self.lessons if l.id == lesson_id), None)

    def index(self, lesson_id: str) -> int:
        return next(i for i, l in enumerate(self.lessons) if l.id == lesson_id)

    def find(self, word: str) -> Lesson | None:
        """A lesson by id, by number in the outline (1-based), or by a unique id prefix."""
        word = word.strip().lower()
        if word.isdigit() and 1 <= int(word) <= len(self.lessons):
            return self.lessons[int(word) - 1]
        if self.get(word):
            return self.get(word)
        starts = [l for l in self.lessons if l.id.startswith(word)]
        return starts[0] if len(starts) == 1 else None


def lesson_dirs(registry: Registry | None) -> list[tuple[str, Path]]:
    """(plugin, folder) for the built-in curriculum, then every folder plugins registered."""
    return [("built-in", builtin_dir("lessons"))] + list(registry.lessons if registry else [])


def load_curriculum(registry: Registry | None = None, paths: Iterable[Path] | None = None) -> Curriculum:
    """Load lessons from the given files/folders, or from the built-in folder and every plugin's."""
    folders = [("given", Path(p)) for p in paths] if paths is not None else lesson_dirs(registry)
    cur = Curriculum()
    loaded: list[tuple[Lesson, Source]] = []
    for plugin, folder in folders:
        if not folder.exists():
            cur.problems.append(Problem(str(folder), 1, f"lesson folder registered by {plugin} does not exist"))
            continue
        files = [folder] if folder.is_file() else sorted(folder.glob("*.y*ml"))
        for path in files:
            lesson, source, problems = load_file(path, plugin)
            cur.problems += problems
            if lesson is None:
                continue
            if lesson.id in cur.sources:
                first = cur.sources[lesson.id]
                cur.problems.append(Problem(str(path), source.line(("id",)),
                                            f"duplicate lesson id {lesson.id!r} (first in {first.path}); kept the first"))
                continue
            cur.sources[lesson.id] = source
            loaded.append((lesson, source))
    # Teaching order: modules in their fixed order, then `order`, then id (stable for ties).
    loaded.sort(key=lambda ls: (MODULES.index(ls[0].module), ls[0].order, ls[0].id))
    cur.lessons = [l for l, _ in loaded]
    cur.problems += _graph_problems(cur)
    return cur


def _graph_problems(cur: Curriculum) -> list[Problem]:
    problems = []
    ids = {l.id for l in cur.lessons}
    for lesson in cur.lessons:
        src = cur.sources[lesson.id]
        for i, pre in enumerate(lesson.prerequisites):
            if pre not in ids:
                problems.append(Problem(str(src.path), src.line(("prerequisites", i)),
                                        f"prerequisite {pre!r} is not a lesson id"))
    # cycles: depth-first search over prerequisite edges
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(lid: str, trail: list[str]) -> None:
        state[lid] = 1
        for pre in cur.get(lid).prerequisites:
            if pre not in ids:
                continue
            if state.get(pre) == 1:
                loop = trail[trail.index(pre):] + [pre] if pre in trail else [lid, pre]
                src = cur.sources[lid]
                problems.append(Problem(str(src.path), src.line(("prerequisites",)),
                                        "prerequisite cycle: " + " -> ".join(loop)))
            elif state.get(pre) is None:
                visit(pre, trail + [pre])
        state[lid] = 2

    for lesson in cur.lessons:
        if lesson.id not in state:
            visit(lesson.id, [lesson.id])
    return problems


# ---- the outline (pure: the web page and the terminal both use it) -------------------------

def outline(cur: Curriculum, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Modules with their lessons, each marked done/current, for any front end.

    [{"module": "architecture", "title": "Architecture", "lessons": [{"number": 1, "id": ...,
      "title": ..., "steps": 7, "done": False, "current": True, "step": 2, "plugin": "built-in"}]}]
    """
    done = set(progress.done) if progress else set()
    current = progress.lesson if progress else None
    out: list[dict[str, Any]] = []
    for number, lesson in enumerate(cur.lessons, 1):
        if not out or out[-1]["module"] != lesson.module:
            out.append({"module": lesson.module, "title": MODULE_TITLES[lesson.module], "lessons": []})
        out[-1]["lessons"].append({
            "number": number, "id": lesson.id, "title": lesson.title, "steps": len(lesson.steps),
            "done": lesson.id in done, "current": lesson.id == current,
            "step": (progress.step + 1) if progress and lesson.id == current else None,
            "plugin": cur.sources[lesson.id].plugin})
    return out


def outline_markdown(cur: Curriculum, progress: Progress | None = None) -> str:
    """The outline as markdown: ✅ done, ▶ current (with its step), plugin lessons labelled."""
    lines = []
    for module in outline(cur, progress):
        lines += [f"**{module['title']}**", ""]
        for l in module["lessons"]:
            mark = "✅ " if l["done"] else "▶ " if l["current"] else ""
            title = f"**{l['title']}** — step {l['step']} of {l['steps']}" if l["current"] else l["title"]
            extra = f" *(from {l['plugin']})*" if l["plugin"] != "built-in" else ""
            lines.append(f"{l['number']}. {mark}{title}{extra}")
        lines.append("")
    if not lines:
        return "No lessons are installed."
    total, finished = len(cur.lessons), len(set(progress.done) if progress else ())
    return "\n".join(lines + [f"{finished} of {total} lessons done. Say `start`, `next`, `back`, "
                              "`lesson N` or `where am I`."])


def outline_for(tutor: Any, learner: str | None) -> str:
    """The outline markdown for one learner of a running tutor (what the page shows)."""
    progress = tutor.progress.load(learner) if learner else Progress()
    return outline_markdown(tutor.curriculum, progress)
