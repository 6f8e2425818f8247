"""Checkpoint downloads: file:// and a local HTTP server on 127.0.0.1 (never the internet), sha256 checks."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from stgcn.convert.download import cache_dir, download, sha256_prefix_of_name
from stgcn.errors import CheckpointError

PAYLOAD = b"not really a checkpoint, but bytes to hash " * 1000


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STGCN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _published(tmp_path: Path, good: bool = True) -> Path:
    digest = hashlib.sha256(PAYLOAD).hexdigest()[:8] if good else "deadbeef"
    path = tmp_path / "src" / f"stgcn_test_20221129-{digest}.pth"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(PAYLOAD)
    return path


def test_sha256_prefix_of_name():
    assert sha256_prefix_of_name("stgcn_x_20221129-484a394a.pth") == "484a394a"
    assert sha256_prefix_of_name("j.pth") is None


def test_file_url_is_cached_and_reused(home, tmp_path):
    src = _published(tmp_path)
    got = download(src.as_uri(), progress=False)
    assert got == cache_dir() / src.name and got.read_bytes() == PAYLOAD
    assert str(got).startswith(str(home))
    src.unlink()  # a second call uses the cache
    assert download(src.as_uri(), progress=False) == got


def test_wrong_sha256_leaves_nothing_in_the_cache(home, tmp_path):
    src = _published(tmp_path, good=False)
    with pytest.raises(CheckpointError, match="does not match the expected prefix deadbeef"):
        download(src.as_uri(), progress=False)
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []
    with pytest.raises(CheckpointError, match="does not match"):
        download(_published(tmp_path).as_uri(), sha256="00000000", progress=False)
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "src"
    root.mkdir(exist_ok=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_download_with_progress(home, tmp_path, server):
    src = _published(tmp_path)
    got = download(f"{server}/{src.name}", progress=True)
    assert got.read_bytes() == PAYLOAD
    with pytest.raises(CheckpointError, match="download failed"):
        download(f"{server}/absent-12345678.pth", progress=False)
    assert sorted(p.name for p in cache_dir().iterdir()) == [src.name]


def test_unsupported_urls(home):
    with pytest.raises(CheckpointError, match="only http"):
        download("ftp://example.invalid/x.pth")
    with pytest.raises(CheckpointError, match="names no file"):
        download("http://127.0.0.1:1/")


def test_convert_from_file_url(home, tmp_path):
    import torch

    from stgcn.convert.mmaction2 import convert_mmaction2
    from tests.test_convert_mm import _random_upstream, _write_config

    sd = _random_upstream("mmaction2", "coco-17", "stgcn_spatial")
    path = tmp_path / "w.pth"
    torch.save({"meta": {}, "state_dict": sd}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    named = path.rename(tmp_path / f"stgcn_coco_20221129-{digest}.pth")
    conv = convert_mmaction2(named.as_uri(), config=_write_config(tmp_path / "c.py", "coco", "stgcn_spatial"))
    assert torch.equal(conv.model.fc.bias, sd["cls_head.fc.bias"])
    assert (cache_dir() / named.name).is_file()
