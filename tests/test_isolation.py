"""The suite can only lean on what `.venv` installs.

A package installed by hand into the machine's global Python can hide a missing install step:
a subprocess that reaches the base interpreter's site-packages passes here and fails on a fresh
machine (that is how the wheel test once failed only in CI). These guards say so early.
"""

import importlib.metadata as md
import re
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The stock Python image of this workplace ships these few packages on every fresh machine, so
# finding them globally says nothing about a missing install step; they are reported, not failed.
STOCK = {"numpy", "pluggy", "pydantic", "pydantic_settings", "yaml", "regex", "pytest", "hypothesis"}


def _import_names(requirement: str) -> list[str]:
    """'pydantic-settings>=2.3' -> the top-level modules that distribution installs."""
    dist = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    try:
        files = md.distribution(dist).files or []
    except md.PackageNotFoundError:
        return []
    tops = {f.parts[0].removesuffix(".py") for f in files
            if f.parts and not f.parts[0].endswith((".dist-info", ".data", ".pth")) and f.parts[0] != ".."}
    return sorted(t for t in tops if t.isidentifier() and not t.startswith("_"))


def _runtime_modules() -> set[str]:
    reqs = [r for r in md.requires("tutor") or [] if "extra ==" not in r]
    return {m for r in reqs for m in _import_names(r)}


def test_the_test_venv_does_not_see_the_global_site_packages():
    cfg = Path(sys.prefix, "pyvenv.cfg")
    assert sys.prefix != sys.base_prefix, "run the tests from the project's .venv (see the README)"
    assert "include-system-site-packages = true" not in cfg.read_text().replace("  ", " ")


def test_no_suite_script_reaches_the_global_python():
    # From inside a venv, --system-site-packages reaches the base interpreter's packages.
    for path in [*ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"), ROOT / ".ci" / "run"]:
        if path.name == Path(__file__).name:
            continue
        assert "--system-site-packages" not in path.read_text(), f"{path} uses --system-site-packages"


def test_the_global_python_carries_no_project_package():
    modules = _runtime_modules()
    assert {"gradio", "torch", "transformers", "bm25s"} <= modules, modules
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = set(subprocess.run([sys._base_executable, "-I", "-c", probe, *sorted(modules)], cwd="/",
                               capture_output=True, text=True, check=True).stdout.split())
    if found & STOCK:
        warnings.warn(f"the global Python ({sys._base_executable}) ships {sorted(found & STOCK)}; "
                      "the stock image has these, and .venv does not see them")
    extra = found - STOCK
    assert not extra, (f"this machine's global Python ({sys._base_executable}) imports {sorted(extra)}: "
                       "it carries the project's packages and may hide a missing install step. Uninstall "
                       "them from it (python3 -m pip uninstall ...) and rerun .ci/run from a clean clone.")
