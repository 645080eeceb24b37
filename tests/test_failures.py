"""Failures told truly (#15 problems 5 and 6): a real full disk, a hash mismatch, a corrupted
tiktoken cache and an unreachable package index each say what happened and what to do, never
"bug"; a derived asset (gpt2's tokenizers JSON) is verified against the sha256 recorded when it
was built, and rebuilt when it changed."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import ASSETS
from test_finetune import TEXT, ask, make_tutor
from tutor import ToolError, chat
from tutor.assets import (GPT2_TIKTOKEN, TIKTOKEN, AssetError, derived_file, package_file, sha256_file,
                          tiktoken_encoding, write_atomic)

BUG = ("bug", "Something went wrong")


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: writes past it fail with the kernel's own ENOSPC."""
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _plugin(name: str):
    from tutor.plugins import _load_file, builtin_dir

    return _load_file(builtin_dir("plugins") / f"{name}.py", f"tutor_test_{uuid.uuid4().hex[:6]}")


def test_asset_errors_are_user_facing_not_bugs():
    assert issubclass(AssetError, ToolError)


def test_a_real_full_disk_while_writing_an_asset(full_disk):
    with pytest.raises(AssetError, match="The disk is full") as e:
        write_atomic(full_disk / "assets" / "big.bin", b"x" * 200_000)
    assert "Free some space" in str(e.value) and "bug" not in str(e.value)
    assert not [p for p in full_disk.rglob("*") if p.is_file()]  # nothing half-written left


def test_a_real_full_disk_while_saving_a_finetuned_model(tmp_path, full_disk):
    """safetensors reports ENOSPC as SafetensorError, never as OSError: this used to say "bug"."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(full_disk)  # only the models folder is on the small disk
    notes = tmp_path / "notes.txt"
    notes.write_text(TEXT)
    tt = make_tutor(home)
    r = ask(tt, f"/finetune tiny-gpt2 --file {notes} --steps 2 --block-size 32")
    assert r.error and "The disk is full" in r.text and "earlier models are untouched" in r.text, r.text
    assert not any(b in r.text for b in BUG)
    assert list(full_disk.iterdir()) == []  # the half-written temporary folder was removed
    assert tt.registry.lookup("models", "ft-ada-1") is None


def test_a_hash_mismatch_in_chat_says_what_happened_not_bug(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    copy = assets / GPT2_TIKTOKEN.dist / GPT2_TIKTOKEN.version / GPT2_TIKTOKEN.member
    copy.parent.mkdir(parents=True)
    data = bytearray(package_file(GPT2_TIKTOKEN, ASSETS).read_bytes())
    data[500] ^= 0x01
    copy.write_bytes(bytes(data))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    from tutor.context import Tutor
    from tutor.settings import Settings

    tt = Tutor(Settings(home=tmp_path / "home", assets_dir=assets, offline="yes"))
    r = chat.final("/tokenize gpt2 hello", tt.session("ada"))
    assert r.error and "sha256 mismatch" in r.text and "refused" in r.text, r.text
    assert not any(b in r.text for b in BUG)


def test_no_package_index_on_first_use(tmp_path, monkeypatch):
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no find-links or local index from pip.conf
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    from tutor.context import Tutor
    from tutor.settings import Settings

    tt = Tutor(Settings(home=tmp_path / "home", assets_dir=tmp_path / "assets", offline="yes"))
    r = chat.final("/tokenize r50k_base hello", tt.session("ada"))
    assert r.error and "Could not download openai-whisper==20250625 from the package index" in r.text, r.text
    assert "Check the network" in r.text and not any(b in r.text for b in BUG)


def test_a_corrupted_tiktoken_cache_is_replaced_not_a_connection_error(tmp_path, monkeypatch):
    import tiktoken.registry

    cache = tmp_path / "tiktoken"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    src = TIKTOKEN["r50k_base"]
    cached = cache / hashlib.sha1(src.url.encode()).hexdigest()
    cached.parent.mkdir()
    data = bytearray(package_file(GPT2_TIKTOKEN, ASSETS).read_bytes())
    data[100:102] = b"AA" if data[100:102] != b"AA" else b"BB"
    cached.write_bytes(bytes(data))
    loaded = tiktoken.registry.ENCODINGS.pop("r50k_base", None)  # make tiktoken read its cache again
    try:
        enc = tiktoken_encoding("r50k_base", ASSETS, offline_setting="yes")
        assert enc.encode("hello") == [31373]
        assert sha256_file(cached) == src.sha256
    finally:
        if loaded is not None:
            tiktoken.registry.ENCODINGS["r50k_base"] = loaded


def test_two_changed_bytes_in_the_gpt2_json_are_caught_and_rebuilt(tmp_path, caplog):
    """#15 problem 6: this edit made gpt2 say 31337 for "hello" while r50k_base said 31373."""
    from tutor.settings import Settings

    assets = tmp_path / "assets"
    ranks = assets / GPT2_TIKTOKEN.dist / GPT2_TIKTOKEN.version / GPT2_TIKTOKEN.member
    ranks.parent.mkdir(parents=True)
    shutil.copy(package_file(GPT2_TIKTOKEN, ASSETS), ranks)
    settings = Settings(home=tmp_path / "home", assets_dir=assets, offline="yes")
    plugin = _plugin("offline_tokenizers")
    first = plugin._gpt2(settings)  # built here, its sha256 recorded beside it
    assert first.encode("hello") == [31373]
    (built,) = (assets / "converted").glob("gpt2-tokenizers-*.json")
    assert (built.parent / (built.name + ".sha256")).read_text() == sha256_file(built)
    text = built.read_bytes()
    assert text.count(b'"hello":31373') == 1
    built.write_bytes(text.replace(b'"hello":31373', b'"hello":31337'))  # two bytes changed
    with caplog.at_level(logging.WARNING, logger="tutor.assets"):
        again = plugin._gpt2(settings)
    assert again.encode("hello") == [31373]
    assert "does not match the sha256 recorded" in caplog.text
    assert built.read_bytes() == text


def test_a_derived_file_is_built_once_and_kept_while_it_matches(tmp_path):
    calls = []

    def build() -> bytes:
        calls.append(1)
        return b"derived bytes"
    path = tmp_path / "d.bin"
    for _ in range(3):
        assert derived_file(path, build).read_bytes() == b"derived bytes"
    assert len(calls) == 1
    path.write_bytes(b"derived bytez")
    derived_file(path, build)
    assert len(calls) == 2 and path.read_bytes() == b"derived bytes"
