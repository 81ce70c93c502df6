"""Download helpers (``oml_fast.utils.io`` and ``oml_fast.utils.remote_storage``, OML's signatures), offline:
a local HTTP server in a thread serves real files (digits images, a saved state dict) laid out as OML's server
does; ``file://`` URLs; MD5 checks; and the errors when the network cannot be reached."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
import torch

from oml_fast import const
from oml_fast.errors import InvalidInputError
from oml_fast.utils.io import (
    DownloadError,
    download_checkpoint,
    download_checkpoint_one_of,
    download_file_from_url,
)
from oml_fast.utils.remote_storage import (
    STORAGE_URL_ENV,
    download_file_from_remote_storage,
    download_folder_from_remote_storage,
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request lines on stderr
        pass


@pytest.fixture
def served(tmp_path, digits_root):
    """A folder served over HTTP as OML's storage: ``download/<path>`` files and ``ls/<folder>`` listings."""
    root = tmp_path / "server"
    files = {}
    for i, image in enumerate(sorted((digits_root / "images").rglob("*.png"))[:3]):
        files[f"mock/{'sub/' if i == 2 else ''}{image.name}"] = image.read_bytes()
    model = torch.nn.Linear(64, 10)
    torch.save(model.state_dict(), tmp_path / "w.pth")
    files["checkpoints/linear.pth"] = (tmp_path / "w.pth").read_bytes()
    for name, content in files.items():
        (root / "download" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "download" / name).write_bytes(content)
    (root / "ls").mkdir()
    (root / "ls" / "mock").write_text(
        json.dumps({"remote_files": [n for n in files if n.startswith("mock/")]})
    )
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files, server
    server.shutdown()
    server.server_close()


@pytest.fixture
def unreachable_url():
    """An http URL on a local port nobody listens on (the connection is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/download/checkpoints/linear.pth"


@pytest.fixture
def ckpt_root(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    monkeypatch.setattr(const, "CKPT_SAVE_ROOT", root)
    return root


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def test_download_file_from_url_returns_or_writes_the_bytes(served, tmp_path):
    url, files, _ = served
    name = next(n for n in files if "/sub/" in n)
    assert download_file_from_url(f"{url}/download/{name}") == files[name]
    target = tmp_path / "out" / "w.pth"
    assert download_file_from_url(f"{url}/download/checkpoints/linear.pth", fname=str(target)) is None
    assert target.read_bytes() == files["checkpoints/linear.pth"]
    assert torch.load(target, weights_only=True)["weight"].shape == (10, 64)
    # a local file by URL, no server
    assert download_file_from_url(target.as_uri()) == files["checkpoints/linear.pth"]


def test_download_errors_name_the_url_and_the_manual_way(served, unreachable_url, tmp_path):
    url, _, _ = served
    with pytest.raises(RuntimeError, match=r"Can not download file from '.*/download/nothing.pth': HTTP 404"):
        download_file_from_url(f"{url}/download/nothing.pth")
    target = tmp_path / "linear.pth"
    with pytest.raises(DownloadError) as error:
        download_file_from_url(unreachable_url, fname=str(target), timeout=5)
    assert unreachable_url in str(error.value) and f"place it at {target}" in str(error.value)
    assert not target.exists()
    with pytest.raises(InvalidInputError, match="Invalid URL"):
        download_file_from_url("oml.daloroserver.com/x")
    with pytest.raises(AssertionError):  # OML asserts
        download_file_from_url("not a url")


def test_download_checkpoint_checks_md5_and_reuses_the_file(served, ckpt_root, capsys):
    url, files, server = served
    content = files["checkpoints/linear.pth"]
    ckpt_url = f"{url}/download/checkpoints/linear.pth"
    path = download_checkpoint(ckpt_url, _md5(content)[:8])
    assert path == str(ckpt_root / "linear.pth") and Path(path).read_bytes() == content

    server.shutdown()  # offline from here (connections refused): the file in place is used
    server.server_close()
    assert download_checkpoint(ckpt_url, _md5(content)[:8]) == path
    assert download_checkpoint_one_of(["1AbCdEf", ckpt_url], _md5(content), fname="linear.pth") == path

    # a file in place with another MD5 is replaced: offline, the error says where to put the right one
    Path(path).write_bytes(b"broken")
    with pytest.raises(DownloadError, match=f"place it at {path}"):
        download_checkpoint(ckpt_url, _md5(content)[:8])
    assert "downloaded again" in capsys.readouterr().out


def test_download_checkpoint_rejects_a_wrong_md5(served, ckpt_root):
    url, _, _ = served
    with pytest.raises(DownloadError, match="MD5 .* expected one starting with 0000"):
        download_checkpoint(f"{url}/download/checkpoints/linear.pth", "0000", fname="linear.pth")
    assert not (ckpt_root / "linear.pth").exists()  # not left behind


def test_download_checkpoint_one_of_tries_each_source(served, unreachable_url, ckpt_root):
    url, files, _ = served
    md5 = _md5(files["checkpoints/linear.pth"])
    good = f"{url}/download/checkpoints/linear.pth"
    assert download_checkpoint_one_of([unreachable_url, good], md5) == str(ckpt_root / "linear.pth")
    (ckpt_root / "linear.pth").unlink()
    with pytest.raises(DownloadError) as error:
        download_checkpoint_one_of([unreachable_url, "1AbCdEfGhIj"], md5, fname="linear.pth")
    message = str(error.value)
    assert unreachable_url in message and "1AbCdEfGhIj" in message
    try:
        import gdown  # noqa: F401
    except ModuleNotFoundError:
        assert (
            "https://drive.google.com/uc?id=1AbCdEfGhIj" in message
            and str(ckpt_root / "linear.pth") in message
        )


def test_remote_storage_downloads_files_and_folders(served, tmp_path, monkeypatch):
    url, files, _ = served
    monkeypatch.setenv(STORAGE_URL_ENV, url)
    name = next(n for n in files if n.startswith("mock/") and "/sub/" not in n)
    assert download_file_from_remote_storage("/" + name) == files[name]
    local = tmp_path / "local"
    download_folder_from_remote_storage("/mock/", str(local))
    got = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    assert got == {n.removeprefix("mock/"): c for n, c in files.items() if n.startswith("mock/")}
    with pytest.raises(DownloadError, match="cannot list the remote folder 'nothing'.*HTTP 404"):
        download_folder_from_remote_storage("nothing", str(local))


def test_remote_storage_offline_error(unreachable_url, tmp_path, monkeypatch):
    monkeypatch.setenv(STORAGE_URL_ENV, unreachable_url.split("/download")[0])
    with pytest.raises(DownloadError, match=f"cannot list the remote folder 'mock'.*{STORAGE_URL_ENV}"):
        download_folder_from_remote_storage("mock", str(tmp_path))
    monkeypatch.delenv(STORAGE_URL_ENV)
    assert const.STORAGE_CKPTS == const.STORAGE_URL + "/download/checkpoints"
