"""The pipelines' datasets, for the three modalities: config keys ``modality`` and ``dataset_args``.

``modality: images`` (the default; OML's pipelines know only images) reads the dataframe's ``path``
column as images with the configured transforms; ``texts`` reads a ``text`` column and tokenises it
(``dataset_args``: ``tokenizer``, ``max_length``); ``audio`` reads ``path`` as audio files
(``dataset_args``: ``sample_rate``, ``max_num_seconds``, ``convert_to_mono``). All four pipelines build
their datasets here: :func:`retrieval_datasets` (train / validate / train-postprocessor, from the
dataframe) and :func:`prediction_dataset` (predict: every file of ``data_dir``; texts are ``.txt``
files, one text each). :func:`check_modality` runs in the pipelines' checks, before any folder exists.

Optional libraries (``transformers``, ``soundfile``) are imported only by the texts / audio datasets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from oml_fast.const import AUDIO_EXTENSIONS
from oml_fast.pipelines.config import to_container
from oml_fast.pipelines.registry import build
from oml_fast.pipelines.schema import ConfigError
from oml_fast.registry.base import suggest

MODALITIES = ("images", "texts", "audio")
# The keys of `dataset_args` per modality: the arguments of the text / audio datasets.
DATASET_ARGS = {
    "images": (),
    "texts": ("tokenizer", "max_length"),
    "audio": ("sample_rate", "max_num_seconds", "convert_to_mono"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
TEXT_SUFFIXES = (".txt",)
PREDICTION_SUFFIXES = {
    "images": IMAGE_SUFFIXES,
    "texts": TEXT_SUFFIXES,
    "audio": tuple(AUDIO_EXTENSIONS),
}
# Pairwise models that take embeddings, not items: the re-ranker cannot give them what they need.
EMBEDDING_PAIRWISE_MODELS = ("linear_siamese",)
# What the built-in extractors embed (custom registered extractors are not checked).
EXTRACTOR_MODALITY = {
    "resnet": "images",
    "vit": "images",
    "vit_clip": "images",
    "vit_unicom": "images",
    "small_cnn": "images",
    "hf_wrapper": "texts",
    "ecapa_tdnn": "audio",
}


def _blocks_named(value: Any, where: str) -> list[tuple[str, str]]:
    """``(where, name)`` of every ``{name, args}`` block in ``value`` (nested ones included)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        if "name" in value and isinstance(value.get("args", {}), (Mapping, type(None))):
            found.append((where, str(value["name"])))
        for key, item in value.items():
            if isinstance(item, Mapping):
                found += _blocks_named(item, f"{where}.{key}")
    return found


def check_modality(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """``(modality, dataset_args)`` of the config, checked: a known modality, ``dataset_args`` that its
    datasets take (texts: a ``tokenizer``), built-in extractors (also the pairwise model's) that
    embed that modality, and a re-ranker's pairwise model that takes items, not embeddings. Raises
    :class:`ConfigError` naming the key."""
    blocks = to_container(cfg)
    modality, args = blocks["modality"], dict(blocks["dataset_args"] or {})
    if modality not in MODALITIES:
        raise ConfigError(f"config key `modality` must be one of {list(MODALITIES)}, got {modality!r}")
    valid = DATASET_ARGS[modality]
    if modality == "images" and args:
        raise ConfigError(f"`dataset_args` is for texts and audio; image datasets take none, got {args}")
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise ConfigError(
            f"`dataset_args` has key(s) {unknown} that `modality: {modality}` does not take"
            f"{suggest(unknown[0], valid)}; valid keys: {list(valid)}"
        )
    if modality == "texts" and not args.get("tokenizer"):
        raise ConfigError("`modality: texts` needs `dataset_args.tokenizer` (a tokenizer folder or name)")
    for where, name in _blocks_named(blocks.get("postprocessor"), "postprocessor"):
        if name in EMBEDDING_PAIRWISE_MODELS:
            raise ConfigError(
                f"`{where}` is '{name}', which scores pairs of embeddings (Tensor[B, feat_dim]), but the "
                f"re-ranker gives its pairwise model the items themselves ({modality}): use concat_siamese or "
                f"trivial_distance_siamese with an extractor of {modality}"
            )
    for key in ("extractor", "postprocessor"):
        for where, name in _blocks_named(blocks.get(key), key):
            embeds = EXTRACTOR_MODALITY.get(name)
            if embeds is not None and embeds != modality:
                raise ConfigError(
                    f"`{where}` is '{name}', an extractor of {embeds}, but `modality` is {modality!r}: "
                    f"set modality={embeds}, or an extractor of {modality}"
                )
    return modality, args


def transforms_of(cfg: DictConfig, keys: Sequence[str]) -> Any:
    """The transform of the first of the config's ``keys`` that is set (images only)."""
    for key in keys:
        block = to_container(cfg)[key]
        if block:
            return build("transforms", block, where=key)
    raise ValueError(f"none of {list(keys)} is set")


def retrieval_datasets(
    cfg: DictConfig,
    with_train: bool,
    transforms_train: Sequence[str] = ("transforms_train",),
    transforms_val: Sequence[str] = ("transforms_val",),
) -> tuple[Any, Any]:
    """``(train_set or None, valid_set)`` of the config's dataframe and ``modality``.

    Images get the transform of the first set key of ``transforms_train`` / ``transforms_val``;
    texts and audio take ``dataset_args``.
    """
    import oml_fast.datasets as datasets

    modality, args = check_modality(cfg)
    if modality == "images":
        common = dict(
            dataframe_name=cfg.dataframe_name,
            cache_size=int(cfg.cache_size),
            check_files=bool(cfg.check_dataframe_files),
        )
        if with_train:
            return datasets.get_retrieval_images_datasets(
                cfg.dataset_root,
                transforms_train=transforms_of(cfg, transforms_train),
                transforms_val=transforms_of(cfg, transforms_val),
                verbose=False,
                **common,
            )
        return None, datasets.get_validation_images_dataset(
            cfg.dataset_root, transforms_val=transforms_of(cfg, transforms_val), **common
        )
    if modality == "texts":
        if with_train:
            return datasets.get_retrieval_texts_datasets(
                cfg.dataset_root, dataframe_name=cfg.dataframe_name, **args
            )
        return None, datasets.get_validation_texts_dataset(
            cfg.dataset_root, dataframe_name=cfg.dataframe_name, **args
        )
    audio = dict(dataframe_name=cfg.dataframe_name, check_files=bool(cfg.check_dataframe_files), **args)
    if with_train:
        return datasets.get_retrieval_audios_datasets(cfg.dataset_root, **audio)
    return None, datasets.get_validation_audios_dataset(cfg.dataset_root, **audio)


def list_files(folder: str | Path, suffixes: Sequence[str], what: str = "image") -> list[Path]:
    """Files under ``folder`` whose suffix is one of ``suffixes`` (recursive, sorted); raises
    ``FileNotFoundError`` / ``ValueError`` if ``folder`` is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"`data_dir` is not a folder: '{folder}'")
    suffixes = tuple(s.lower() for s in suffixes)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not paths:
        raise ValueError(f"no {what} files ({', '.join(suffixes)}) under '{folder}'")
    return paths


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); raises ``FileNotFoundError`` / ``ValueError`` if none."""
    return list_files(folder, IMAGE_SUFFIXES, "image")


def read_texts(paths: Sequence[Path]) -> list[str]:
    """The texts of ``.txt`` files (UTF-8, one text per file, surrounding whitespace dropped); an
    unreadable or empty file raises ``ValueError`` naming it."""
    texts = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read the text file '{path}' (UTF-8): {error}") from error
        if not text:
            raise ValueError(f"the text file '{path}' is empty: every file under `data_dir` must hold a text")
        texts.append(text)
    return texts


def prediction_dataset(cfg: DictConfig) -> tuple[list[Path], Any]:
    """``(paths, dataset)``: every file of the config's ``modality`` under ``data_dir`` (images:
    ``transforms_predict``, else ``transforms_val``; texts: ``.txt`` files, one text each, with
    ``dataset_args``; audio: with ``dataset_args``). Item ``i`` is ``paths[i]``."""
    import oml_fast.datasets as datasets

    modality, args = check_modality(cfg)
    if not cfg.data_dir:
        raise ValueError(f"predict needs `data_dir` (a folder of {modality} files)")
    what = {"images": "image", "texts": "text", "audio": "audio"}[modality]
    paths = list_files(cfg.data_dir, PREDICTION_SUFFIXES[modality], what)
    if modality == "images":
        transform = transforms_of(cfg, ("transforms_predict", "transforms_val"))
        return paths, datasets.ImageBaseDataset(paths, transform=transform, cache_size=0)
    if modality == "texts":
        texts = read_texts(paths)
        tokenizer = datasets.load_tokenizer(args.pop("tokenizer"))
        return paths, datasets.TextBaseDataset(texts, tokenizer=tokenizer, **args)
    return paths, datasets.AudioBaseDataset(paths, **args)


def check_sample_rate(extractor: Any, dataset: Any) -> None:
    """An audio extractor built for one rate (``extractor.sample_rate``) must get items at that rate."""
    base = getattr(dataset, "_dataset", dataset)  # the audio base dataset inside the labelled wrapper
    expected, given = getattr(extractor, "sample_rate", None), getattr(base, "sample_rate", None)
    if expected is not None and given is not None and int(expected) != int(given):
        raise ConfigError(
            f"the audio items are resampled to {given} Hz (`dataset_args.sample_rate`) but "
            f"{type(extractor).__name__} expects {expected} Hz: set dataset_args.sample_rate={expected}"
        )


__all__ = [
    "DATASET_ARGS",
    "EMBEDDING_PAIRWISE_MODELS",
    "EXTRACTOR_MODALITY",
    "MODALITIES",
    "check_modality",
    "check_sample_rate",
    "list_files",
    "list_images",
    "prediction_dataset",
    "read_texts",
    "retrieval_datasets",
    "transforms_of",
]
