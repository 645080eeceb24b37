"""A non-editable install works: the wheel carries the built-in plugins and lessons inside the
tutor package and claims no generic top-level name such as `plugins` or `lessons`."""

import json
import subprocess
import sys
import sysconfig
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

    # A fresh virtual environment that sees the running venv's dependencies but not the checkout.
    # Not a venv over the system site-packages: from inside a venv, that reaches the *base* interpreter's
    # site-packages, so the test passed only where the dependencies were installed there by hand.
    # A plain path line in a .pth file adds the running purelib without running its .pth files,
    # so the checkout's editable-install hook stays out.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    own_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (own_site / "zz_test_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
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
