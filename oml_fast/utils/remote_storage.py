"""OML's ``oml.utils.remote_storage``: files and folders of OML's file server (``STORAGE_URL``).

The server answers ``GET {STORAGE_URL}/download/<path>`` with a file and ``GET {STORAGE_URL}/ls/<folder>``
with ``{"remote_files": [<path>, ...]}`` (or an error ``{"detail": ...}``). The environment variable
``OML_FAST_STORAGE_URL`` replaces ``STORAGE_URL`` (a mirror, or a local server); without network the errors
name the URL and where to put the file by hand (:func:`oml_fast.utils.io.download_file_from_url`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

import oml_fast.const as const
from oml_fast.utils.io import DownloadError, download_file_from_url

STORAGE_URL_ENV = "OML_FAST_STORAGE_URL"


def storage_url() -> str:
    """``$OML_FAST_STORAGE_URL`` when set, else OML's ``STORAGE_URL``; no trailing slash."""
    return (os.environ.get(STORAGE_URL_ENV) or const.STORAGE_URL).rstrip("/")


def _fix_path_for_remote_storage(path: str) -> str:
    """``"/a/b/"`` -> ``"a/b"`` (``"/"`` -> ``""``), as OML."""
    return path.strip("/") if path != "/" else ""


def download_file_from_remote_storage(
    remote_path: str, fname: str | None = None, timeout: float = const.REQUESTS_TIMEOUT
) -> bytes | None:
    """The file ``remote_path`` of the server: written to ``fname`` (returns ``None``) or returned as bytes."""
    remote_path = _fix_path_for_remote_storage(remote_path)
    return download_file_from_url(f"{storage_url()}/download/{remote_path}", fname, timeout=timeout)


def _list_remote_folder(remote_folder: str, timeout: float) -> list[str]:
    url = f"{storage_url()}/ls/{remote_folder}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return list(json.loads(response.read())["remote_files"])
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read())["detail"]
        except (ValueError, KeyError, TypeError):
            detail = f"HTTP {error.code} {error.reason}"
        raise DownloadError(f"cannot list the remote folder '{remote_folder}' ({url}): {detail}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(
            f"cannot list the remote folder '{remote_folder}' ({url}): {getattr(error, 'reason', error)}. Without "
            f"network access, copy the folder from a machine that has it (or set {STORAGE_URL_ENV} to a mirror)."
        ) from error
    except (ValueError, KeyError, TypeError) as error:
        raise DownloadError(f"{url} did not answer with a list of files: {error}") from error


def download_folder_from_remote_storage(
    remote_folder: str, local_folder: str, timeout: float = const.REQUESTS_TIMEOUT
) -> None:
    """Downloads every file of ``remote_folder`` into ``local_folder``, keeping the paths below the folder."""
    remote_folder = _fix_path_for_remote_storage(remote_folder)
    remote_files = _list_remote_folder(remote_folder, timeout)
    local = Path(local_folder)
    local.mkdir(parents=True, exist_ok=True)
    progress = tqdm(remote_files, disable=not remote_files)
    for remote_file in progress:
        relative = Path(remote_file).relative_to(remote_folder) if remote_folder else Path(remote_file)
        if ".." in relative.parts or relative.is_absolute():
            raise DownloadError(f"the server listed '{remote_file}', which is outside '{remote_folder}'")
        progress.set_description_str(f"Downloading '{relative}'")
        download_file_from_remote_storage(remote_file, str(local / relative), timeout=timeout)


__all__ = ["download_folder_from_remote_storage", "download_file_from_remote_storage", "storage_url"]
