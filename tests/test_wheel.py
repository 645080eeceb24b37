"""A non-editable install works: the wheel carries the built-in plugins and lessons inside the
tutor package and claims no generic top-level name such as `plugins` or `lessons`."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_runs_with_its_builtin_plugins(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(dist), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel, = dist.glob("tutor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "tutor" or t.endswith(".dist-info") for t in tops), tops
    assert "tutor/builtin/plugins/count.py" in names

    # a fresh virtual environment that reuses the heavy dependencies but not the checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    where = subprocess.run([str(py), "-c", "import tutor, sysconfig; print(tutor.__file__); "
                            "print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.split("\n")
    assert where[0].startswith(str(venv)), where  # the wheel's copy, not the checkout
    site = Path(where[1])
    assert not (site / "plugins").exists() and not (site / "lessons").exists()
    assert (site / "tutor" / "builtin" / "plugins" / "count.py").is_file()
    out = subprocess.run([str(venv / "bin" / "tutor"), "ask", "--json", "/count o200k_base hello world"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["counts"] == {"o200k_base": 2} and data["characters"] == 11
    listing = subprocess.run([str(venv / "bin" / "tutor"), "plugins", "--json"], capture_output=True, text=True,
                             cwd=tmp_path, check=True)
    assert {"count", "openai_encodings"} <= {p["name"] for p in json.loads(listing.stdout)["plugins"]}
