"""Loading extractor weights: a local file (state dict or Lightning checkpoint) or a URL (needs network).

A URL is downloaded once into ``~/.cache/oml_fast/weights`` (``OML_FAST_CACHE`` overrides the
folder). Without network the download fails with a message that says how to proceed offline:
download the file elsewhere and pass its local path.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import torch


class WeightsLoadingError(RuntimeError):
    """Weights could not be found, downloaded or matched to the model; the message says which and why."""


def _cache_dir() -> Path:
    return Path(os.environ.get("OML_FAST_CACHE", Path.home() / ".cache" / "oml_fast")) / "weights"


def is_url(weights: str | Path) -> bool:
    """Whether ``weights`` names a remote file rather than a local one.

    >>> is_url("https://example.com/w.pth"), is_url("w.pth")
    (True, False)
    """
    return str(weights).startswith(("http://", "https://", "ftp://"))


def download_weights(url: str, timeout: float = 30.0) -> Path:
    """Downloads ``url`` into the cache (reused when present) and returns the local path.

    Raises :class:`WeightsLoadingError` naming the URL when the download fails (e.g. offline).
    """
    target = (
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


def load_state_dict(weights: str | Path, prefix_to_strip: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict in ``weights``: a local file or a URL; Lightning checkpoints are unwrapped.

    ``prefix_to_strip`` (e.g. ``"model."``) is removed from the keys that start with it; keys of a
    Lightning checkpoint saved by the oml_fast pipeline are stripped of ``"model."`` automatically.
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
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
        prefix_to_strip = prefix_to_strip or "model."
    if not isinstance(loaded, dict):
        raise WeightsLoadingError(f"'{path}' holds a {type(loaded).__name__}, not a state dict")
    if prefix_to_strip:
        stripped = {k[len(prefix_to_strip) :]: v for k, v in loaded.items() if k.startswith(prefix_to_strip)}
        loaded = stripped or loaded
    return loaded


def load_weights_into(model: torch.nn.Module, weights: str | Path, strict: bool = True) -> torch.nn.Module:
    """Loads ``weights`` (see :func:`load_state_dict`) into ``model``; a mismatch names the differing keys."""
    state_dict = load_state_dict(weights)
    try:
        model.load_state_dict(state_dict, strict=strict)
    except RuntimeError as error:
        raise WeightsLoadingError(
            f"weights '{weights}' do not fit {type(model).__name__}: {error}"
        ) from error
    return model
