"""OML's ``oml.utils.io``: file hashes and download helpers.

The downloads use the standard library (``urllib``): ``http(s)://``, ``ftp://`` and ``file://`` URLs, so a
mirror or a local copy serves as well as OML's server. When the network cannot be reached, the error names
the URL and the place to put the file by hand; a checkpoint already in place (with the right MD5) is never
downloaded again. Google Drive ids (OML's second source of checkpoints) need ``gdown`` (not a dependency).

>>> calc_hash(b"oml")
'34660957742c372ff6e61951fc401ed5'
"""

from __future__ import annotations

import hashlib
import importlib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import oml_fast.const as const
from oml_fast.errors import InvalidInputError

_CHUNK = 1 << 16


def calc_hash(source: Path | str | bytes) -> str:
    """MD5 hex digest of a file (a path) or of bytes."""
    digest = hashlib.md5()
    if isinstance(source, bytes):
        digest.update(source)
    elif isinstance(source, (Path, str)):
        with open(Path(source).resolve(), "rb") as file:
            for chunk in iter(lambda: file.read(_CHUNK), b""):
                digest.update(chunk)
    else:
        raise TypeError(f"`source` must be a path or bytes, got {type(source).__name__}")
    return digest.hexdigest()


def calc_folder_hash(folder: Path | str) -> str:
    """MD5 of a folder: of its files' relative POSIX paths (sorted, joined) and then of each file's MD5, in
    that order; renaming a file changes it as much as editing one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"`folder` must be an existing folder, got {folder}")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    digest = hashlib.md5("".join(files).encode())
    for name in files:
        digest.update(calc_hash(folder / name).encode())
    return digest.hexdigest()


def check_exists_and_validate_md5(path: str | Path, md5: str | None = None) -> bool:
    """Whether ``path`` (file or folder) exists and, if ``md5`` is given, has that hash."""
    path = Path(path)
    if not path.exists():
        return False
    if not md5:
        return True
    return (calc_folder_hash(path) if path.is_dir() else calc_hash(path)) == md5


class DownloadError(RuntimeError):
    """A file could not be downloaded (or was not the expected one); the message names the URL and the place
    to put the file by hand."""


_URL_SCHEMES = ("http", "https", "ftp", "file")


def is_url(url: str) -> bool:
    """Whether ``url`` is an ``http(s)://``, ``ftp://`` or ``file://`` URL (a Google Drive id is not).

    >>> is_url("https://oml.daloroserver.com/download/x.ckpt"), is_url("file:///tmp/x"), is_url("1a2b3c")
    (True, True, False)
    """
    parsed = urllib.parse.urlparse(str(url))
    return parsed.scheme in _URL_SCHEMES and bool(parsed.netloc or (parsed.scheme == "file" and parsed.path))


def _by_hand(url: str, fname: str | Path | None) -> str:
    where = f"place it at {fname}" if fname is not None else "use a local copy (a path, or a file:// URL)"
    return f"Without network access, download {url} on a machine that has it and {where}."


def download_file_from_url(
    url: str, fname: str | None = None, timeout: float = const.REQUESTS_TIMEOUT
) -> bytes | None:
    """Downloads ``url``: writes it to ``fname`` (folders created) and returns ``None``, or returns its bytes.

    Raises:
        InvalidInputError: ``url`` is not a URL (OML asserts).
        DownloadError: (a ``RuntimeError``, as OML's) the server answered with an error, or could not be reached:
            the message names the URL and where to put the file by hand.
    """
    if not is_url(url):
        raise InvalidInputError(
            f"Invalid URL: `url` must be an http(s)://, ftp:// or file:// URL, got {url!r}"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            content = response.read()
    except urllib.error.HTTPError as error:
        raise DownloadError(
            f"Can not download file from '{url}': HTTP {error.code} {error.reason}"
        ) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"Can not download file from '{url}': {reason}. {_by_hand(url, fname)}"
        ) from error
    if fname is None:
        return content
    path = Path(fname)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(content)
    partial.replace(path)
    return None


def download_checkpoint(url_or_fid: str, hash_md5: str, fname: str | None = None) -> str:
    """The path of a checkpoint in ``CKPT_SAVE_ROOT`` (``oml_fast.const``), downloaded unless already there.

    Args:
        url_or_fid: the checkpoint's URL, or its Google Drive file id (needs ``gdown``).
        hash_md5: the start of the file's MD5 (OML's zoo records give a prefix).
        fname: the file's name in ``CKPT_SAVE_ROOT``; default: the last part of ``url_or_fid``.

    A file already there with the right MD5 is returned as it is; one with another MD5 is removed and
    downloaded again (as OML). A download whose MD5 differs is removed and raises :class:`DownloadError`.
    """
    if not isinstance(hash_md5, str) or not hash_md5:
        raise InvalidInputError(f"`hash_md5` must be the (start of the) file's MD5, got {hash_md5!r}")
    root = Path(const.CKPT_SAVE_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    save_path = root / (fname or Path(urllib.parse.urlparse(url_or_fid).path).name)
    if save_path.exists():
        if calc_hash(save_path).startswith(hash_md5):
            return str(save_path)
        print(f"{save_path} is there, but its MD5 does not start with {hash_md5}: it is downloaded again.")
        save_path.unlink()
    if is_url(url_or_fid):
        download_file_from_url(url_or_fid, fname=str(save_path))
    else:
        _download_from_google_drive(url_or_fid, save_path)
    actual = calc_hash(save_path)
    if not actual.startswith(hash_md5):
        save_path.unlink()
        raise DownloadError(
            f"the file downloaded from '{url_or_fid}' is not the expected checkpoint (probably broken): its MD5 "
            f"is {actual}, expected one starting with {hash_md5}; it was removed"
        )
    return str(save_path)


def _download_from_google_drive(file_id: str, save_path: Path) -> None:
    manual = f"download https://drive.google.com/uc?id={file_id} by hand and place it at {save_path}"
    try:
        gdown = importlib.import_module("gdown")
    except ModuleNotFoundError as error:
        raise DownloadError(
            f"'{file_id}' is a Google Drive file id: downloading it needs `gdown` (pip install gdown), or {manual}"
        ) from error
    if gdown.download(id=file_id, output=str(save_path), quiet=False) is None or not save_path.is_file():
        raise DownloadError(f"Can not download the Google Drive file '{file_id}'; {manual}")


def download_checkpoint_one_of(
    url_or_fid_list: list[str] | str, hash_md5: str, fname: str | None = None
) -> str:
    """:func:`download_checkpoint` from the first source of ``url_or_fid_list`` that works (a checkpoint already
    in place is found by the first). When none works, :class:`DownloadError` lists every source's failure."""
    sources = [url_or_fid_list] if isinstance(url_or_fid_list, str) else list(url_or_fid_list)
    if not sources:
        raise InvalidInputError("`url_or_fid_list` is empty: no source to download the checkpoint from")
    failures: list[str] = []
    for source in sources:
        try:
            return download_checkpoint(source, hash_md5, fname)
        except (DownloadError, InvalidInputError) as error:
            failures.append(f"{source}: {error}")
            last = error
    raise DownloadError("no source of the checkpoint worked:\n" + "\n".join(failures)) from last


__all__ = [
    "calc_hash",
    "calc_folder_hash",
    "check_exists_and_validate_md5",
    "DownloadError",
    "download_file_from_url",
    "download_checkpoint",
    "download_checkpoint_one_of",
    "is_url",
]
