"""File hashes of OML's ``oml.utils.io`` (its download helpers are not offered: oml_fast works offline).

>>> calc_hash(b"oml")
'34660957742c372ff6e61951fc401ed5'
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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


__all__ = ["calc_hash", "calc_folder_hash", "check_exists_and_validate_md5"]
