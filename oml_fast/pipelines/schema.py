"""The config schema: every top-level key of a pipeline config, its type, default and meaning.

One table serves three purposes: the defaults a config is completed with, the key and type checks
(run before a pipeline creates any folder or file), and the reference page ``docs/config.md``
(``scripts/gen_config_doc.py`` renders it from here, a test checks it is current).

>>> check_types({"max_epochs": "abc"})
Traceback (most recent call last):
...
oml_fast.pipelines.schema.ConfigError: config key `max_epochs` must be int, got 'abc' (str)
>>> check_types({"max_epochs": 3, "limit_train_batches": 0.5})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A config key, value or override is wrong; the message names the key and what is expected."""


@dataclass(frozen=True)
class Key:
    """One top-level config key.

    Args:
        name: the key (OML's name where OML has it).
        default: its value when the config does not set it.
        types: accepted types, among ``int float bool str list dict block None`` (``block`` is a
            ``{name, args}`` mapping; ``float`` accepts ints too).
        pipelines: the pipelines that read it (``train validate predict train-postprocessor``), or ``all``.
        doc: what it means.
        oml: ``True`` when OML 4.0's pipelines have the key (else it is an oml_fast addition).
    """

    name: str
    default: Any
    types: tuple[str, ...]
    pipelines: str
    doc: str
    oml: bool = True


_ALL, _TRAIN, _VAL, _PRED, _POST = "all", "train", "validate", "predict", "train-postprocessor"
_FIT = f"{_TRAIN}, {_POST}"
_DATA = f"{_TRAIN}, {_VAL}, {_POST}"

SCHEMA: tuple[Key, ...] = (
    # engine
    Key(
        "seed",
        42,
        ("int",),
        _ALL,
        "seed of every random generator (Lightning's `seed_everything`, the samplers)",
    ),
    Key(
        "precision", 32, ("int", "str"), _ALL, 'Lightning precision: `32`, `16`, `"16-mixed"`, `"bf16-mixed"`'
    ),
    Key("accelerator", "auto", ("str", "None"), _ALL, '`"auto"`, `"cpu"`, `"gpu"`, ...; `null` = `"auto"`'),
    Key(
        "devices",
        1,
        ("int", "list", "str", "None"),
        _ALL,
        "number of devices (processes), or a list of device ids; > 1 runs DDP",
    ),
    Key(
        "strategy",
        "auto",
        ("str", "None"),
        _ALL,
        'Lightning strategy (`"auto"`, `"ddp"`, `"ddp_spawn"`); with `devices` > 1, `"auto"` means DDP',
        oml=False,
    ),
    Key("find_unused_parameters", False, ("bool",), _ALL, "DDP's `find_unused_parameters`"),
    Key(
        "lightning_trainer_extra_args",
        {},
        ("dict", "None"),
        _FIT,
        "extra keyword arguments of `lightning.Trainer` (e.g. `max_time`)",
    ),
    # data
    Key(
        "dataset_root",
        "data/digits",
        ("str",),
        _DATA,
        "folder of the dataframe and of the relative image paths",
    ),
    Key(
        "dataframe_name",
        "df.csv",
        ("str",),
        _DATA,
        "the dataframe inside `dataset_root` (OML's format: `label, path, split, is_query, is_gallery` + optional `category, sequence, x_1, x_2, y_1, y_2`)",
    ),
    Key(
        "modality",
        "images",
        ("str",),
        _ALL,
        "what the items are: `images` (`path`), `texts` (a `text` column; `dataset_args.tokenizer`) or `audio` (`path` to audio files); predict: the files under `data_dir` (texts: `.txt` files, one text each)",
        oml=False,
    ),
    Key(
        "dataset_args",
        {},
        ("dict",),
        _ALL,
        "arguments of the text or audio datasets: texts `tokenizer` (a folder or name), `max_length`; audio `sample_rate`, `max_num_seconds`, `convert_to_mono`",
        oml=False,
    ),
    Key(
        "check_dataframe_files",
        True,
        ("bool",),
        _DATA,
        "check that every image / audio file of the dataframe exists before starting",
        oml=False,
    ),
    Key(
        "show_dataset_warnings",
        True,
        ("bool",),
        _DATA,
        "warn about questionable dataframes (accepted; oml_fast raises on broken ones)",
    ),
    Key("num_workers", 0, ("int",), _ALL, "DataLoader workers"),
    Key("cache_size", 0, ("int",), _DATA, "decoded images kept in memory per process"),
    Key(
        "transforms_train",
        {"name": "augs_torch", "args": {"im_size": 224}},
        ("block",),
        _FIT,
        "train-time transform (registry `transforms`; group `transforms`)",
    ),
    Key(
        "transforms_val",
        {"name": "norm_resize_torch", "args": {"im_size": 224}},
        ("block",),
        _DATA,
        "validation transform",
    ),
    Key(
        "transforms_predict",
        None,
        ("block", "None"),
        _PRED,
        "prediction transform; `null` = `transforms_val`",
    ),
    Key(
        "transforms_extraction",
        None,
        ("block", "None"),
        _POST,
        "transform of the embedding extraction before post-processor training; `null` = `transforms_val`",
    ),
    Key(
        "sampler",
        {"name": "balance", "args": {"n_labels": 8, "n_instances": 4}},
        ("block", "None"),
        _FIT,
        "batch sampler (group `sampler`); `null`: shuffled batches of `bs_train`",
    ),
    Key("bs_train", None, ("int", "None"), _TRAIN, "train batch size when `sampler` is `null`"),
    Key("bs_val", 256, ("int",), f"{_DATA}", "validation batch size"),
    Key("bs", None, ("int", "None"), _PRED, "prediction batch size; `null` = `bs_val`"),
    # models and training
    Key(
        "extractor",
        {"name": "small_cnn", "args": {"feat_dim": 64, "normalise_features": True, "weights": None}},
        ("block",),
        _ALL,
        "the model producing embeddings (group `extractor`); `args.weights` loads weights",
    ),
    Key(
        "criterion",
        {
            "name": "triplet_with_miner",
            "args": {"margin": 0.2, "need_logs": True, "miner": {"name": "hard_triplets", "args": {}}},
        },
        ("block",),
        _TRAIN,
        "the loss (group `criterion`; the nested `miner` block: group `miner`); losses that take them get `in_features` (the extractor's `feat_dim`) and `num_classes` (the training labels), other values replaced with a warning, and `label2category` when `smoothing_epsilon` > 0",
    ),
    Key(
        "optimizer",
        {"name": "adam", "args": {"lr": 1e-3}},
        ("block",),
        _FIT,
        "optimizer over the trainable parameters (group `optimizer`)",
    ),
    Key(
        "scheduling",
        None,
        ("dict", "None"),
        _FIT,
        "`{scheduler: {name, args}, scheduler_interval: epoch|step, scheduler_frequency: int, monitor_metric: str}` (group `scheduler` for the block)",
    ),
    Key(
        "freeze_n_epochs",
        0,
        ("int",),
        _FIT,
        "epochs during which the extractor (train) or the pairwise model's extractor (train-postprocessor) is frozen",
    ),
    Key("max_epochs", 10, ("int",), _FIT, "training epochs"),
    Key(
        "limit_train_batches",
        None,
        ("int", "float", "None"),
        _FIT,
        "shorter epochs: batches (int) or a fraction (float)",
        oml=False,
    ),
    Key("valid_period", 1, ("int",), _FIT, "validate every N epochs"),
    Key("gradient_clip_val", None, ("float", "None"), _FIT, "Lightning gradient clipping", oml=False),
    # validation
    Key(
        "metric_args",
        {
            "cmc_top_k": [1, 5],
            "precision_top_k": [5],
            "map_top_k": [5],
            "fmr_vals": [],
            "pcf_variance": [],
            "return_only_overall_category": False,
        },
        ("dict",),
        _DATA,
        "keyword arguments of `EmbeddingMetrics`",
    ),
    Key("metric_for_checkpointing", "OVERALL/cmc/1", ("str",), _FIT, "metric that picks the best checkpoint"),
    Key(
        "mode_for_checkpointing", "max", ("str",), _FIT, '`"max"` or `"min"` (for `metric_for_checkpointing`)'
    ),
    Key(
        "log_images",
        True,
        ("bool",),
        _DATA,
        "pictures of the worst queries (PNG under `<run>/images` and in the logger)",
    ),
    Key("n_worst_queries", 4, ("int",), _DATA, "queries per picture", oml=False),
    Key("n_retrieved_to_show", 5, ("int",), _DATA, "retrieved items per query in a picture", oml=False),
    Key(
        "postprocessor",
        None,
        ("block", "None"),
        f"{_VAL}, {_POST}",
        "re-ranking / thresholding after retrieval (group `postprocessor`)",
    ),
    # post-processor training
    Key(
        "pairwise_model",
        None,
        ("block", "None"),
        _POST,
        "the pairwise model of the re-ranker (group `pairwise_model`); usually referenced by `postprocessor.args.pairwise_model: ${pairwise_model}`",
    ),
    Key(
        "hard_pairs_mining",
        True,
        ("bool",),
        _POST,
        "`PairsMiner(hard_mining=...)` of the re-ranker's training",
    ),
    Key("batch_size_inference", 128, ("int",), _POST, "batch size of the embedding extraction"),
    Key(
        "embeddings_cache_dir",
        None,
        ("str", "None"),
        _POST,
        "folder where extracted embeddings are cached (`null`: no cache)",
    ),
    # outputs
    Key("logs_root", "logs", ("str",), _ALL, "parent folder of the run folders"),
    Key(
        "logs_folder",
        None,
        ("str", "None"),
        _ALL,
        "run folder name; `null`: date and time of the run and the pipeline's name",
    ),
    Key(
        "hydra_dir",
        None,
        ("str", "None"),
        _ALL,
        "OML's run folder (`${logs_root}/${logs_folder}`); when set it is the run folder",
    ),
    Key(
        "logger",
        {"name": "tensorboard", "args": {}},
        ("block", "None"),
        _FIT,
        "`tensorboard`, `csv`, `mlflow`, `wandb`, `neptune`, `clearml` (group `logger`); `null` = TensorBoard. A CSV log is always written too",
    ),
    Key("progress_bar", True, ("bool",), _ALL, "Lightning's progress bar", oml=False),
    Key("postfix", "", ("str", "None"), _ALL, "suffix of the default run folder name, and a logger tag"),
    Key("tags", [], ("list",), _ALL, "tags of the logger's run"),
    # weights, prediction
    Key(
        "checkpoint",
        None,
        ("str", "None"),
        _ALL,
        "train: `last` (or a path) resumes a run; validate / predict: weights loaded into the extractor",
        oml=False,
    ),
    Key(
        "allow_untrained",
        False,
        ("bool",),
        f"{_VAL}, {_PRED}",
        "validate / predict a model without weights (else an error)",
        oml=False,
    ),
    Key(
        "data_dir",
        None,
        ("str", "None"),
        _PRED,
        "folder of the files to embed (searched recursively): images, or per `modality` `.txt` files (one text each) or audio files",
    ),
    Key(
        "save_dir",
        ".",
        ("str",),
        _PRED,
        "predictions are written to `<save_dir>/predictions.json` (`{path: embedding}`)",
    ),
    Key(
        "save_path",
        None,
        ("str", "None"),
        _PRED,
        "also write `.pt` / `.npz` (`paths`, `embeddings`)",
        oml=False,
    ),
)
KEYS: dict[str, Key] = {key.name: key for key in SCHEMA}
DEFAULTS: dict[str, Any] = {key.name: key.default for key in SCHEMA}


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _matches(value: Any, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, (list, tuple))
    if kind == "dict":
        return isinstance(value, Mapping)
    if kind == "block":
        return isinstance(value, Mapping) and "name" in value
    raise AssertionError(kind)


def describe(types: tuple[str, ...]) -> str:
    """``("int", "None")`` -> ``"int or null"``."""
    names = ["null" if t == "None" else "{name, args} block" if t == "block" else t for t in types]
    return " or ".join(names)


def check_types(cfg: Mapping[str, Any]) -> None:
    """Raises :class:`ConfigError` naming the first key whose (resolved) value has a type it does not take."""
    for name, value in cfg.items():
        key = KEYS.get(str(name))
        if key is not None and not any(_matches(value, kind) for kind in key.types):
            raise ConfigError(
                f"config key `{name}` must be {describe(key.types)}, got {value!r} ({_type_name(value)})"
            )


__all__ = ["DEFAULTS", "KEYS", "SCHEMA", "ConfigError", "Key", "check_types", "describe"]
