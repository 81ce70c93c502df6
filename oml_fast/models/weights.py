"""Loading extractor weights: a local file (state dict or Lightning checkpoint), a URL (needs network), or
a checkpoint of the zoo (an extractor's ``pretrained_models`` record).

A URL is downloaded once into ``~/.cache/oml_fast/weights`` (``OML_FAST_CACHE`` overrides the
folder). Without network the download fails with a message that says how to proceed offline:
download the file elsewhere and pass its local path.

A zoo checkpoint (:func:`zoo_checkpoint`) is looked up by its file name ``fname`` in that folder, in
OML's checkpoint folder (``$XDG_CACHE_HOME/oml/torch/checkpoints``, so files OML downloaded are
reused) and in torch hub's (``$TORCH_HOME/hub/checkpoints``, where torchvision keeps its files); only
then downloaded. ``OML_FAST_OFFLINE=1`` forbids the download. When the file is nowhere, the error
names the file, the folder to put it in and the address to fetch it from.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


class WeightsLoadingError(RuntimeError):
    """Weights could not be found, downloaded or matched to the model; the message says which and why."""


OFFLINE_ENV = "OML_FAST_OFFLINE"


def _cache_dir() -> Path:
    return Path(os.environ.get("OML_FAST_CACHE", Path.home() / ".cache" / "oml_fast")) / "weights"


def checkpoint_folders() -> list[Path]:
    """Where zoo checkpoints are looked for, in order: ours (downloads go there), OML's, torch hub's."""
    oml = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oml" / "torch" / "checkpoints"
    return [_cache_dir(), oml, Path(torch.hub.get_dir()) / "checkpoints"]


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """The hex digest of a file (OML's zoo records give the start of its MD5 as ``hash``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_url(weights: str | Path) -> bool:
    """Whether ``weights`` names a remote file rather than a local one.

    >>> is_url("https://example.com/w.pth"), is_url("w.pth")
    (True, False)
    """
    return str(weights).startswith(("http://", "https://", "ftp://"))


def download_weights(url: str, timeout: float = 30.0, target: Path | None = None) -> Path:
    """Downloads ``url`` into the cache, or to ``target``, (reused when present) and returns the local path.

    Raises :class:`WeightsLoadingError` naming the URL when the download fails (e.g. offline).
    """
    target = target or (
        _cache_dir()
        / f"{hashlib.sha1(url.encode()).hexdigest()[:12]}_{Path(url.split('?')[0]).name or 'weights.pth'}"
    )
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        raise WeightsLoadingError(
            f"cannot download weights from {url}: {error}. Without network access, download the file on "
            f"another machine, copy it here and pass its local path as `weights` (or put it at {target})."
        ) from error
    partial.rename(target)
    return target


def _check_is_torch_file(path: Path) -> None:
    """``torch.save`` writes a zip archive (or, before torch 1.6, a pickle): anything else is no checkpoint."""
    with open(path, "rb") as file:
        head = file.read(4)
    if not head:
        raise WeightsLoadingError(f"'{path}' is empty: not a checkpoint")
    # b"\x80" opens a pickle (protocol >= 2): the legacy torch.save format.
    if not (zipfile.is_zipfile(path) or head.startswith(b"\x80")):
        raise WeightsLoadingError(
            f"'{path}' is not a checkpoint: not a file written by torch.save (it starts with {head!r})"
        )


def read_checkpoint(weights: str | Path) -> dict[str, Any]:
    """The dict saved in ``weights`` (a local file or a URL), as saved: not unwrapped, keys unchanged.

    Loaded with ``torch.load(weights_only=True)``: tensors, containers and plain values only.
    """
    path = download_weights(str(weights)) if is_url(weights) else Path(weights).expanduser()
    if not path.is_file():
        raise WeightsLoadingError(f"weights file not found: '{path}'")
    _check_is_torch_file(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        raise WeightsLoadingError(
            f"'{path}' holds Python objects besides tensors"
            + (f" ({blocked.group(1)})" if blocked else "")
            + ", which are not unpickled (torch.load(weights_only=True), for safety): save the model's "
            "state_dict instead, or, if you trust the file, extract it with torch.load(path, weights_only=False)"
        ) from error
    except Exception as error:
        raise WeightsLoadingError(
            f"cannot load weights from '{path}': {type(error).__name__}: {error}"
        ) from error
    if not isinstance(loaded, dict):
        raise WeightsLoadingError(f"'{path}' holds a {type(loaded).__name__}, not a state dict")
    return loaded


def load_state_dict(weights: str | Path, prefix_to_strip: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict in ``weights``: a local file or a URL; Lightning checkpoints are unwrapped.

    ``prefix_to_strip`` (e.g. ``"model."``) is removed from the keys that start with it; keys of a
    Lightning checkpoint saved by the oml_fast pipeline are stripped of ``"model."`` automatically.
    """
    loaded = read_checkpoint(weights)
    if "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
        prefix_to_strip = prefix_to_strip or "model."
    if prefix_to_strip:
        stripped = {k[len(prefix_to_strip) :]: v for k, v in loaded.items() if k.startswith(prefix_to_strip)}
        loaded = stripped or loaded
    return loaded


def load_checked(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], weights: Any, strict: bool = True
) -> None:
    """``model.load_state_dict(state_dict)``; a mismatch raises :class:`WeightsLoadingError` naming ``weights``."""
    try:
        model.load_state_dict(state_dict, strict=strict)
    except RuntimeError as error:
        raise WeightsLoadingError(
            f"weights '{weights}' do not fit {type(model).__name__}: {error}"
        ) from error


def load_weights_into(model: torch.nn.Module, weights: str | Path, strict: bool = True) -> torch.nn.Module:
    """Loads ``weights`` (see :func:`load_state_dict`) into ``model``; a mismatch names the differing keys."""
    load_checked(model, load_state_dict(weights), weights, strict=strict)
    return model


def _check_hash(path: Path, record: Mapping[str, Any], name: str) -> Path:
    """``path`` if its digest matches the record's (``hash``: start of the MD5, ``sha256``: the SHA-256)."""
    for key, algorithm in (("hash", "md5"), ("sha256", "sha256")):
        expected = record.get(key)
        if not expected:
            continue
        if not (actual := file_digest(path, algorithm)).startswith(expected):
            raise WeightsLoadingError(
                f"'{path}' is not the checkpoint '{name}': its {algorithm.upper()} is {actual}, expected one "
                f"starting with '{expected}'. Replace it with the right file (or remove it to download it again)."
            )
    return path


def zoo_checkpoint(name: str, record: Mapping[str, Any]) -> Path:
    """The local file of the zoo checkpoint ``name`` described by ``record`` (a ``pretrained_models`` value).

    ``record`` keys: ``fname`` (the file name), ``url`` (an address, or a list of them; items that are
    not URLs are Google Drive ids, named in the error only), ``hash`` (the start of the file's MD5) and
    ``sha256`` (its SHA-256), checked when given. Searched in :func:`checkpoint_folders`, then downloaded into the first of them unless
    ``OML_FAST_OFFLINE=1``. Raises :class:`WeightsLoadingError` saying which file to place where.
    """
    sources = record.get("url") or []
    sources = [sources] if isinstance(sources, str) else list(sources)
    urls = [source for source in sources if is_url(source)]
    fname = record.get("fname") or (Path(urls[0].split("?")[0]).name if urls else f"{name}.ckpt")
    for folder in checkpoint_folders():
        if (folder / fname).is_file():
            return _check_hash(folder / fname, record, name)
    target = _cache_dir() / fname
    failures = []
    if os.environ.get(OFFLINE_ENV) == "1":
        failures.append(f"{OFFLINE_ENV}=1 forbids downloads")
    else:
        for url in urls:
            try:
                return _check_hash(download_weights(url, target=target), record, name)
            except WeightsLoadingError as error:
                target.unlink(missing_ok=True)
                failures.append(str(error).split(". Without network")[0])
    where = [f"from {url}" for url in urls] + [
        f"from Google Drive, file id {source}" for source in sources if not is_url(source)
    ]
    fetch = f" (download it {' or '.join(where)})" if where else ""
    reasons = "; ".join(failures) if failures else "it has no download address"
    raise WeightsLoadingError(
        f"the checkpoint of pretrained model '{name}' is not available ({reasons}). Place the file '{fname}'"
        f"{fetch} at {target} (set OML_FAST_CACHE to use another folder; "
        f"{' and '.join(map(str, checkpoint_folders()[1:]))} are searched too)."
    )
