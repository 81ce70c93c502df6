"""The hostile-input table: what every layer does with bad input, one row per case, checked against the code.

Each :class:`Case` calls the real code on a tiny bad input and states what happens: the exception class
(exact, unless a tuple says the class is still being unified) and a fragment of its message, a warning,
a documented result, or the exit code of the command line. ``docs/hostile_inputs.md`` is generated
from :data:`CASES` by ``scripts/gen_hostile_inputs_doc.py``; :func:`test_doc_is_up_to_date` keeps
the two equal.

Rows with ``gap`` set are **known gaps**: today's behaviour (``today``) is a silent wrong result or an
unclear error. Their ``outcome`` is the behaviour we want, and they are ``xfail(strict=True)``: the
fix makes the row pass, the strict xfail then fails, and whoever fixed it moves the row out of the
gaps (delete ``gap`` / ``today``) and regenerates the doc.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import oml_fast  # noqa: F401  (loads the ops)
from oml_fast.datasets import InMemoryQueryGalleryDataset, check_retrieval_dataframe_format
from oml_fast.datasets.audios import AudioBaseDataset, AudioReadError
from oml_fast.datasets.dataframe import DataFrameFormatError
from oml_fast.datasets.images import ImageBaseDataset, ImageReadError, read_image
from oml_fast.datasets.texts import TextBaseDataset
from oml_fast.errors import InvalidInputError
from oml_fast.functional import calc_fnmr_at_fmr, calc_pcf, calc_retrieval_metrics
from oml_fast.losses import ArcFaceLoss, ContrastiveLoss, TripletLossWithMiner
from oml_fast.metrics import EmbeddingMetrics
from oml_fast.metrics.fnmr import calc_fnmr_at_fmr_all_pairs
from oml_fast.miners import HardTripletsMiner, NHardTripletsMiner
from oml_fast.models.weights import WeightsLoadingError, load_state_dict
from oml_fast.ops import hard_mining, knn, pairwise_distance, retrieval_metrics, retrieval_relevance
from oml_fast.ops.fnmr import pair_distance_histogram
from oml_fast.pipelines.config import ConfigError, load_config
from oml_fast.pipelines.registry import RegistryError, build
from oml_fast.retrieval import RetrievalResults
from oml_fast.retrieval.retrieval_results import InvalidRetrievalResultsError
from oml_fast.utils.images.images_resize import karesize_bboxes, karesize_image
from oml_fast.utils.io import DownloadError, download_checkpoint, download_file_from_url

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hostile_inputs.md"
GENERATOR = ROOT / "scripts" / "gen_hostile_inputs_doc.py"

ErrorClass = type[BaseException] | tuple[type[BaseException], ...]


# ----- outcomes -----


@dataclass(frozen=True)
class Raises:
    """The call raises ``error`` (exactly that class; any of them for a tuple) with ``fragment`` in its message."""

    error: ErrorClass
    fragment: str


@dataclass(frozen=True)
class Warns:
    """The call warns (``category``, ``fragment`` in the message) and returns ``result`` (checked by ``check``)."""

    category: type[Warning]
    fragment: str
    result: str
    check: Callable[[Any], bool]


@dataclass(frozen=True)
class Returns:
    """The call returns without an error or warning; ``check`` confirms the documented ``result``."""

    result: str
    check: Callable[[Any], bool]


@dataclass(frozen=True)
class Exits:
    """The command line (called through :func:`_cli`) exits with ``code`` and ``fragment`` on stderr."""

    code: int
    fragment: str


Outcome = Raises | Warns | Returns | Exits


@dataclass(frozen=True)
class Case:
    id: str
    layer: str
    bad_input: str
    call: Callable[[Path], Any]
    outcome: Outcome
    gap: str = ""  # non-empty: a known gap (the issue that fixes it); `outcome` is then the wanted behaviour
    today: str = ""  # for gaps: what happens today


# ----- small inputs -----


def _x(n: int = 4, d: int = 3) -> torch.Tensor:
    return torch.arange(n * d, dtype=torch.float32).reshape(n, d) / 7


def _nan_rows() -> torch.Tensor:
    return torch.tensor([[float("nan")], [0.0], [1.0], [2.0]])


LABELS = torch.tensor([0, 0, 1, 1])
REL = torch.ones(1, 2, dtype=torch.bool)  # one query, two retrieved items, both relevant


def _metrics(top_k: Any = (1,), which: str = "cmc", op: bool = True) -> Any:
    ks = {"cmc": (1,), "precision": (1,), "map": (1,)}
    ks[which] = top_k
    if op:
        return retrieval_metrics(
            REL, torch.tensor([1]), torch.tensor([2]), ks["cmc"], ks["precision"], ks["map"]
        )
    return calc_retrieval_metrics(
        [torch.tensor([0, 1])],
        [torch.tensor([0])],
        cmc_top_k=ks["cmc"],
        precision_top_k=ks["precision"],
        map_top_k=ks["map"],
    )


def _dataset(labels: Any = (0, 0, 1, 1), **kwargs: Any) -> InMemoryQueryGalleryDataset:
    return InMemoryQueryGalleryDataset(labels=list(labels), **kwargs)


def _em(labels: Any = (0, 0, 1, 1), dataset_kwargs: dict | None = None, **kwargs: Any) -> EmbeddingMetrics:
    kwargs = {"cmc_top_k": (1,), "precision_top_k": (1,), "map_top_k": (1,), "pcf_variance": (), **kwargs}
    return EmbeddingMetrics(_dataset(labels, **(dataset_kwargs or {})), verbose=False, **kwargs)


def _em_compute(embeddings: torch.Tensor, labels: Any = (0, 0, 1, 1), **kwargs: Any) -> Any:
    calc = _em(labels, **kwargs)
    calc.setup()
    calc.update(embeddings, list(range(len(embeddings))))
    return calc.compute_metrics()


def _em_update(embeddings: torch.Tensor, indices: list[int]) -> EmbeddingMetrics:
    calc = _em()
    calc.setup()
    calc.update(embeddings, indices)
    return calc


def _csv(tmp_path: Path, text: str, check_files: bool = False) -> Any:
    path = tmp_path / "df.csv"
    path.write_text(text)
    return check_retrieval_dataframe_format(path, dataset_root=tmp_path, check_files=check_files)


HEADER = "label,path,split,is_query,is_gallery\n"


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _saved(path: Path, obj: Any) -> Path:
    torch.save(obj, path)
    return path


def _cli(*argv: str) -> tuple[int, str]:
    """Runs ``oml-fast argv`` in-process; returns (exit code, stderr)."""
    from oml_fast.pipelines.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, stderr.getvalue()


def _fake(fn: Callable[[], Any]) -> Any:
    """Runs ``fn`` under FakeTensorMode: the fake kernels, as torch.compile traces them."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        return fn()


def _sgd(args: dict) -> Any:
    return build("optimizers", {"name": "sgd", "args": args}, params=[torch.zeros(1, requires_grad=True)])


def _free_port() -> int:
    """A local TCP port nobody listens on (connecting to it is refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_nan(value: Any) -> bool:
    return bool(torch.isnan(torch.as_tensor(value)).all())


# ----- the table -----

OPS, FUNCTIONAL, LOSSES, MODELS, EM, RR, DATASETS, CONFIG, CLI = (
    "ops",
    "functional",
    "losses and miners",
    "models",
    "EmbeddingMetrics",
    "RetrievalResults",
    "datasets",
    "config",
    "CLI",
)

CASES: list[Case] = [
    # --- ops: pairwise_distance ---
    Case(
        "pd-1d",
        OPS,
        "`pairwise_distance`: `x1` is 1-D",
        lambda p: pairwise_distance(torch.zeros(3), _x()),
        Raises(ValueError, "`x1` must be a 2-D tensor [N, D]"),
    ),
    Case(
        "pd-width",
        OPS,
        "`pairwise_distance`: `x1` and `x2` of different widths D",
        lambda p: pairwise_distance(_x(4, 3), _x(5, 2)),
        Raises(ValueError, "must have the same number of columns D"),
    ),
    Case(
        "pd-int",
        OPS,
        "`pairwise_distance`: int64 embeddings",
        lambda p: pairwise_distance(_x().long(), _x().long()),
        Raises(TypeError, "`x1` must be float32, float64, float16 or bfloat16"),
    ),
    Case(
        "pd-dtype-mix",
        OPS,
        "`pairwise_distance`: float32 `x1`, float64 `x2`",
        lambda p: pairwise_distance(_x(), _x().double()),
        Raises(TypeError, "must have the same dtype"),
    ),
    Case(
        "pd-metric",
        OPS,
        "`pairwise_distance`: unknown metric `'manhattan'`",
        lambda p: pairwise_distance(_x(), _x(), "manhattan"),
        Raises(ValueError, "`metric` must be one of 'euclidean', 'sqeuclidean', 'cosine', 'dot'"),
    ),
    Case(
        "pd-device",
        OPS,
        "`pairwise_distance`: `x1` on CPU, `x2` on the meta device",
        lambda p: pairwise_distance(_x(), _x().to("meta")),
        Raises(ValueError, "must be on the same device"),
    ),
    Case(
        "pd-nan",
        OPS,
        "`pairwise_distance`: a NaN entry",
        lambda p: pairwise_distance(torch.tensor([[float("nan"), 0.0]]), torch.zeros(2, 2)),
        Returns("NaN in the entries that row touches (documented: NaN/inf propagate)", lambda r: _is_nan(r)),
    ),
    Case(
        "pd-huge",
        OPS,
        "`pairwise_distance` of two identical float32 rows of magnitude 1e20",
        lambda p: pairwise_distance(torch.full((1, 4), 1e20), torch.full((1, 4), 1e20)),
        Returns(
            "exactly 0 (as documented for identical rows; the data is scaled before squaring)",
            lambda r: float(r) == 0,
        ),
    ),
    Case(
        "pd-tiny",
        OPS,
        "`pairwise_distance` of float32 rows of magnitude 1e-20",
        lambda p: pairwise_distance(torch.tensor([[3e-20, 0.0]]), torch.tensor([[0.0, 4e-20]])),
        Returns(
            "the right distance, 5e-20 (no underflow of the squares)",
            lambda r: abs(float(r) / 5e-20 - 1) < 1e-6,
        ),
    ),
    # --- ops: knn ---
    Case(
        "knn-k0",
        OPS,
        "`knn`: `k = 0`",
        lambda p: knn(_x(), _x(5), 0),
        Raises(ValueError, "`k` must be a positive integer, got 0"),
    ),
    Case(
        "knn-k-float",
        OPS,
        "`knn`: `k = 1.5`",
        lambda p: knn(_x(), _x(5), 1.5),  # type: ignore[arg-type]
        Raises((ValueError, TypeError, RuntimeError), "argument 'k'"),
    ),
    Case(
        "knn-k-gallery",
        OPS,
        "`knn`: `k` larger than the gallery (k=7, 5 items)",
        lambda p: knn(_x(), _x(5), 7),
        Returns(
            "rows padded with distance `inf` and index `-1` after the 5 real neighbours",
            lambda r: bool(
                (r[1][:, 5:] == -1).all() and torch.isinf(r[0][:, 5:]).all() and (r[1][:, :5] >= 0).all()
            ),
        ),
    ),
    Case(
        "knn-huge-k",
        OPS,
        "`knn` with `k = 2**40` (5 gallery items)",
        lambda p: knn(_x(), _x(5), 2**40),
        Raises(ValueError, "`k` (1099511627776) exceeds the gallery size (5)"),
    ),
    Case(
        "knn-huge-values",
        OPS,
        "`knn` of float32 `[[0], [0], [1.8e19]]` against itself (1.8e19 squared overflows float32)",
        lambda p: knn(torch.tensor([[0.0], [0.0], [1.8e19]]), torch.tensor([[0.0], [0.0], [1.8e19]]), 1),
        Returns(
            "each row's exact neighbour at distance 0 (the data is scaled before squaring)",
            lambda r: r[1].flatten().tolist() == [0, 0, 2] and float(r[0].max()) == 0,
        ),
    ),
    Case(
        "knn-nan",
        OPS,
        "`knn`: a NaN in `queries`",
        lambda p: knn(_nan_rows(), _x(4, 1), 1),
        Raises(ValueError, "`queries` contains NaN or inf values"),
    ),
    Case(
        "knn-empty-gallery",
        OPS,
        "`knn`: empty gallery `[0, D]`",
        lambda p: knn(_x(), torch.zeros(0, 3), 2),
        Returns("only padding (`inf`, `-1`) in every row", lambda r: bool((r[1] == -1).all())),
    ),
    Case(
        "knn-lone-ids",
        OPS,
        "`knn`: `query_ids` without `gallery_ids`",
        lambda p: knn(_x(), _x(5), 2, "euclidean", torch.arange(4), None),
        Raises(ValueError, "`query_ids` and `gallery_ids` must be given together"),
    ),
    Case(
        "knn-ids-int32",
        OPS,
        "`knn`: int32 `query_ids` / `gallery_ids`",
        lambda p: knn(_x(), _x(5), 2, "euclidean", torch.arange(4).int(), torch.arange(5).int()),
        Raises(TypeError, "`query_ids` must be int64"),
    ),
    Case(
        "knn-int",
        OPS,
        "`knn`: int32 embeddings",
        lambda p: knn(_x().int(), _x(5).int(), 2),
        Raises(TypeError, "`queries` must be float32, float64, float16 or bfloat16"),
    ),
    Case(
        "knn-fake-k0",
        OPS,
        "`knn` under torch.compile's fake mode: `k = 0`",
        lambda p: _fake(lambda: knn(_x(), _x(5), 0)),
        Raises((ValueError, RuntimeError), "`k` must be a positive integer, got 0"),
    ),
    # --- ops: retrieval_relevance ---
    Case(
        "rel-out-of-range",
        OPS,
        "`retrieval_relevance`: a gallery index beyond the gallery",
        lambda p: retrieval_relevance(torch.tensor([[7]]), torch.tensor([0]), torch.tensor([0, 1, 2])),
        Raises((IndexError, ValueError), "`retrieved` must hold gallery indices in [0, 3) or -1"),
    ),
    # --- ops: retrieval_metrics ---
    Case(
        "rm-topk-0",
        OPS,
        "`retrieval_metrics`: `cmc_top_k=(0,)`",
        lambda p: _metrics((0,)),
        Raises(ValueError, "`cmc_top_k` must be a non-empty sequence of positive integers, got [0]"),
    ),
    Case(
        "rm-topk-empty",
        OPS,
        "`retrieval_metrics`: `map_top_k=()` (the op needs every metric)",
        lambda p: _metrics((), "map"),
        Raises(ValueError, "`map_top_k` must be a non-empty sequence of positive integers, got []"),
    ),
    Case(
        "rm-float-relevance",
        OPS,
        "`retrieval_metrics`: float `is_relevant`",
        lambda p: retrieval_metrics(REL.float(), torch.tensor([1]), torch.tensor([2]), [1], [1], [1]),
        Raises(TypeError, "`is_relevant` must be bool"),
    ),
    Case(
        "rm-n-retrieved",
        OPS,
        "`retrieval_metrics`: `n_retrieved` larger than the width of `is_relevant`",
        lambda p: retrieval_metrics(REL, torch.tensor([1]), torch.tensor([5]), [1], [1], [1]),
        Raises(ValueError, "`n_retrieved` must be in [0, 2]"),
    ),
    # --- ops: hard_mining ---
    Case(
        "hm-n-positive",
        OPS,
        "`hard_mining`: `n_positive = -1`",
        lambda p: hard_mining(_x(), LABELS, -1, 1),
        Raises(ValueError, "`n_positive` must be >= 0, got -1"),
    ),
    Case(
        "hm-mask-dtype",
        OPS,
        "`hard_mining`: int64 `anchor_mask`",
        lambda p: hard_mining(_x(), LABELS, 1, 1, "euclidean", torch.ones(4, dtype=torch.long)),
        Raises((TypeError, RuntimeError), "`anchor_mask` must be bool"),
    ),
    Case(
        "hm-mask-length",
        OPS,
        "`hard_mining`: `anchor_mask` of the wrong length",
        lambda p: hard_mining(_x(), LABELS, 1, 1, "euclidean", torch.ones(3, dtype=torch.bool)),
        Raises((ValueError, RuntimeError), "`anchor_mask` must be a 1-D tensor of length 4"),
    ),
    # --- functional ---
    Case(
        "crm-topk-0",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: `cmc_top_k=(0,)`",
        lambda p: _metrics((0,), "cmc", op=False),
        Raises(ValueError, "`cmc_top_k` must be a non-empty sequence of positive integers, got [0]"),
    ),
    Case(
        "crm-topk-negative",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: `precision_top_k=(-1,)`",
        lambda p: _metrics((-1,), "precision", op=False),
        Raises(ValueError, "`precision_top_k` must be a non-empty sequence of positive integers, got [-1]"),
    ),
    Case(
        "crm-topk-fraction",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: `map_top_k=(1.5,)`",
        lambda p: _metrics((1.5,), "map", op=False),
        Raises(ValueError, "`map_top_k` must be a non-empty sequence of positive integers, got [1.5]"),
    ),
    Case(
        "crm-lengths",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: 1 retrieved list, 2 gt lists",
        lambda p: calc_retrieval_metrics([torch.tensor([0])], [torch.tensor([0]), torch.tensor([1])]),
        Raises(InvalidInputError, "`retrieved_ids` and `gt_ids` must have one entry per query, got 1 and 2"),
    ),
    Case(
        "crm-empty-topk",
        FUNCTIONAL,
        "`calc_retrieval_metrics(..., map_top_k=())`",
        lambda p: _metrics((), "map", op=False),
        Returns(
            'a result without a `"map"` key (metrics.md: an empty `top_k` means not computed)',
            lambda r: "map" not in r and "cmc" in r,
        ),
    ),
    Case(
        "crm-no-gt",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: a query retrieved items but has no relevant item (`L > 0`, `n_gt = 0`)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([0])], [torch.tensor([], dtype=torch.long)], None, (1,), (1,), (1,)
        ),
        Warns(
            UserWarning,
            "queries retrieved items but have no relevant gallery item",
            "cmc 0, precision NaN (0/0), map 0 (metrics.md's edge case)",
            lambda r: _is_nan(r["precision"][1]) and float(r["cmc"][1]) == 0 and float(r["map"][1]) == 0,
        ),
    ),
    Case(
        "crm-nothing",
        FUNCTIONAL,
        "`calc_retrieval_metrics`: an empty list and no gt (`L = 0`, `n_gt = 0`)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([], dtype=torch.long)], [torch.tensor([], dtype=torch.long)], None, (1,), (1,), (1,)
        ),
        Returns(
            "cmc = precision = map = 1 (metrics.md's edge case)",
            lambda r: all(float(r[m][1]) == 1 for m in ("cmc", "precision", "map")),
        ),
    ),
    Case(
        "fnmr-fmr-range",
        FUNCTIONAL,
        "`calc_fnmr_at_fmr`: `fmr_vals=(1.5,)`",
        lambda p: calc_fnmr_at_fmr(np.array([1.0]), np.array([2.0]), (1.5,)),
        Raises(ValueError, "`fmr_vals` must contain numbers in [0, 1], got"),
    ),
    Case(
        "fnmr-no-negatives",
        FUNCTIONAL,
        "`calc_fnmr_at_fmr`: no negative distances",
        lambda p: calc_fnmr_at_fmr(np.array([1.0]), np.array([]), (0.1,)),
        Raises(ValueError, "`neg_dist` is empty"),
    ),
    Case(
        "pcf-range",
        FUNCTIONAL,
        "`calc_pcf`: `pcf_variance=(2,)`",
        lambda p: calc_pcf(_x(5, 3), (2,)),
        Raises(ValueError, "`pcf_variance` must contain numbers in [0, 1], got (2,)"),
    ),
    # --- losses and miners (the NaN policy: a NaN loss, as OML's, never a finite one from the other rows) ---
    Case(
        "loss-nan-batch-hard",
        LOSSES,
        "`TripletLossWithMiner(miner=HardTripletsMiner())`: one NaN row (was: a finite loss without it)",
        lambda p: TripletLossWithMiner(0.1, HardTripletsMiner())(_nan_rows(), LABELS),
        Returns("NaN (as OML)", _is_nan),
    ),
    Case(
        "loss-nan-none",
        LOSSES,
        "`TripletLossWithMiner(miner=HardTripletsMiner(), reduction='none')`: one NaN row",
        lambda p: TripletLossWithMiner(0.1, HardTripletsMiner(), reduction="none")(_nan_rows(), LABELS),
        Returns(
            "one loss per triplet, NaN for those holding the NaN row (here all 4: mined as 0, it is also the "
            "nearest negative of anchors 2 and 3)",
            lambda r: r.shape == (4,) and _is_nan(r),
        ),
    ),
    Case(
        "loss-nan-n-hard-no-triplet",
        LOSSES,
        "`NHardTripletsMiner(n_positive=(2, 2))` where no anchor has a 2nd positive, one NaN row",
        lambda p: TripletLossWithMiner(0.1, NHardTripletsMiner((2, 2), 1))(_nan_rows(), LABELS),
        Returns("NaN (no triplet holds the row; was 0.0)", _is_nan),
    ),
    Case(
        "loss-all-nan-contrastive",
        LOSSES,
        "`ContrastiveLoss()` (hard pairs) on an all-NaN batch",
        lambda p: ContrastiveLoss()(torch.full((4, 2), float("nan")), LABELS),
        Returns("NaN (was 0.0)", _is_nan),
    ),
    Case(
        "loss-inf-contrastive",
        LOSSES,
        "`ContrastiveLoss()` with an inf entry",
        lambda p: ContrastiveLoss()(torch.tensor([[0.0], [float("inf")], [1.0], [2.0]]), LABELS),
        Returns("NaN (was inf)", _is_nan),
    ),
    Case(
        "miner-nan",
        LOSSES,
        "`HardTripletsMiner().sample` with one NaN row",
        lambda p: HardTripletsMiner().sample(_nan_rows(), LABELS),
        Returns(
            "triplets that keep the NaN row (mined as if it were 0), so a loss over them is NaN",
            lambda r: bool(torch.isnan(r[0][0]).all()),
        ),
    ),
    Case(
        "loss-str-labels",
        LOSSES,
        "`TripletLossWithMiner` with string labels",
        lambda p: TripletLossWithMiner(0.1, HardTripletsMiner())(_x(), ["a", "a", "b", "b"]),
        Raises(TypeError, "`labels` must be integers, got strings; map them to integer ids first"),
    ),
    Case(
        "miner-str-labels",
        LOSSES,
        "`NHardTripletsMiner().sample` with numpy string labels",
        lambda p: NHardTripletsMiner().sample(_x(), np.array(["a", "a", "b", "b"])),
        Raises(TypeError, "`labels` must be integers, got strings (numpy dtype <U1)"),
    ),
    Case(
        "arcface-str-labels",
        LOSSES,
        "`ArcFaceLoss` with string labels (was: `AttributeError`: 'list' object has no attribute 'dim')",
        lambda p: ArcFaceLoss(3, 2)(_x(), ["a", "a", "b", "b"]),  # type: ignore[arg-type]
        Raises(TypeError, "`y` must be integers, got strings; map them to integer ids first"),
    ),
    # --- models ---
    Case(
        "ckpt-garbage",
        MODELS,
        "`load_state_dict` (`weights=` / `checkpoint=`) of a file that is no checkpoint "
        "(was: torch.load's weights_only lecture)",
        lambda p: load_state_dict(_file(p, "model.ckpt", b"not a checkpoint")),
        Raises(WeightsLoadingError, "model.ckpt' is not a checkpoint: not a file written by torch.save"),
    ),
    Case(
        "ckpt-empty",
        MODELS,
        "`load_state_dict` of an empty file",
        lambda p: load_state_dict(_file(p, "model.ckpt", b"")),
        Raises(WeightsLoadingError, "model.ckpt' is empty: not a checkpoint"),
    ),
    Case(
        "download-not-url",
        MODELS,
        "`download_file_from_url` (`oml_fast.utils.io`) of an address without a scheme",
        lambda p: download_file_from_url("oml.daloroserver.com/download/x.ckpt"),
        Raises(InvalidInputError, "Invalid URL: `url` must be an http(s)://, ftp:// or file:// URL"),
    ),
    Case(
        "download-offline",
        MODELS,
        "`download_file_from_url` when the server cannot be reached (a local port nobody listens on)",
        lambda p: download_file_from_url(f"http://127.0.0.1:{_free_port()}/w.pth", fname=str(p / "w.pth")),
        Raises(DownloadError, "Without network access, download http://127.0.0.1:"),
    ),
    Case(
        "download-ckpt-no-hash",
        MODELS,
        "`download_checkpoint` with an empty `hash_md5`",
        lambda p: download_checkpoint("https://oml.daloroserver.com/download/checkpoints/x.ckpt", ""),
        Raises(InvalidInputError, "`hash_md5` must be the (start of the) file's MD5"),
    ),
    Case(
        "ckpt-objects",
        MODELS,
        "`load_state_dict` of a checkpoint holding a Python object besides tensors",
        lambda p: load_state_dict(_saved(p / "model.ckpt", {"state_dict": {}, "loss": ContrastiveLoss()})),
        Raises(
            WeightsLoadingError,
            "model.ckpt' holds Python objects besides tensors (oml_fast.losses.contrastive.ContrastiveLoss), "
            "which are not unpickled (torch.load(weights_only=True), for safety)",
        ),
    ),
    # --- EmbeddingMetrics ---
    Case(
        "em-topk-0",
        EM,
        "`cmc_top_k=(0,)`",
        lambda p: _em(cmc_top_k=(0,)),
        Raises(ValueError, "`cmc_top_k` must be a non-empty sequence of positive integers, got [0]"),
    ),
    Case(
        "em-empty-topk",
        EM,
        "`map_top_k=()`",
        lambda p: _em_compute(_x(4, 1), map_top_k=()),
        Returns('metrics without `"map"` (metrics.md, as OML 4.0)', lambda r: "map" not in r["OVERALL"]),
    ),
    Case(
        "em-indices-range",
        EM,
        "`update` with dataset indices outside `[0, len(dataset))`",
        lambda p: _em_update(torch.zeros(2, 2), [3, 4]),
        Raises(ValueError, "`indices` must lie in [0, 3], got values in [3, 4]"),
    ),
    Case(
        "em-missing-items",
        EM,
        "`compute_metrics` after embedding only 2 of 4 items",
        lambda p: _em_update(torch.zeros(2, 2), [0, 1]).compute_metrics(),
        Raises(ValueError, "we've collected 2 out of 4 items; missing indices (first ones): [2, 3]"),
    ),
    Case(
        "em-nan",
        EM,
        "a NaN embedding",
        lambda p: _em_compute(_nan_rows()),
        Raises(ValueError, "contains NaN or inf values"),
    ),
    Case(
        "em-single-sample-label",
        EM,
        "a label with one sample (its only positive is itself, excluded)",
        lambda p: _em_compute(torch.tensor([[0.0], [0.1], [1.0]]), labels=(0, 0, 1)),
        Warns(
            UserWarning,
            "1 of 3 queries retrieved items but have no relevant gallery item",
            "precision NaN for that query, so the mean precision is NaN; cmc and map count it as 0",
            lambda r: _is_nan(r["OVERALL"]["precision"][1]),
        ),
    ),
    Case(
        "em-empty-gallery",
        EM,
        "no item is in the gallery",
        lambda p: _em_compute(
            torch.zeros(3, 2), labels=(0, 0, 1), dataset_kwargs={"is_gallery": [False] * 3}
        ),
        Raises(ValueError, "the gallery is empty: there is nothing to retrieve"),
    ),
    Case(
        "em-k-gallery",
        EM,
        "`k` larger than the gallery (`cmc_top_k=(10,)`, 4 items)",
        lambda p: _em_compute(torch.tensor([[0.0], [0.1], [1.0], [2.0]]), cmc_top_k=(10,)),
        Returns(
            "`k` is clipped to the list length (metrics.md): cmc@10 = 1",
            lambda r: float(r["OVERALL"]["cmc"][10]) == 1,
        ),
    ),
    Case(
        "em-worst-unknown",
        EM,
        "`get_worst_queries_ids` with an unknown metric name",
        lambda p: (lambda m: (m.compute_metrics(), m.get_worst_queries_ids("OVERALL/cmc/99", 2)))(
            _em_update(_x(4, 1), [0, 1, 2, 3])
        ),
        Raises(KeyError, "unknown metric 'OVERALL/cmc/99'; known: ["),
    ),
    # --- RetrievalResults ---
    Case(
        "rr-unsorted",
        RR,
        "distances not ascending",
        lambda p: RetrievalResults([torch.tensor([0.5, 0.1])], [torch.tensor([0, 1])]),
        Raises(InvalidRetrievalResultsError, "Distances must be sorted in ascending order"),
    ),
    Case(
        "rr-duplicate",
        RR,
        "a gallery id twice in one list",
        lambda p: RetrievalResults([torch.tensor([0.1, 0.2])], [torch.tensor([1, 1])]),
        Raises(InvalidRetrievalResultsError, "Retrieved ids must be unique within a query"),
    ),
    Case(
        "rr-no-gt",
        RR,
        "a query with an empty `gt_ids` list",
        lambda p: RetrievalResults(
            [torch.tensor([0.1])], [torch.tensor([0])], [torch.tensor([], dtype=torch.long)]
        ),
        Warns(
            UserWarning,
            "Some of the queries don't have available gts.",
            "the results (as OML)",
            lambda r: len(r) == 1,
        ),
    ),
    Case(
        "rr-n-items",
        RR,
        "`from_embeddings(..., n_items=0)`",
        lambda p: RetrievalResults.from_embeddings(_x(), _dataset(), n_items=0),
        Raises(ValueError, "`n_items` must be a positive integer, got 0"),
    ),
    Case(
        "rr-rows",
        RR,
        "`from_embeddings` with 3 rows for a dataset of 4",
        lambda p: RetrievalResults.from_embeddings(_x(3), _dataset()),
        Raises(ValueError, "`embeddings` must have one row per dataset item (4), got 3"),
    ),
    # --- datasets ---
    Case(
        "karesize-type",
        DATASETS,
        "`karesize_image` (`oml_fast.utils.images.images_resize`) of a nested list",
        lambda p: karesize_image([[0, 1]], (2, 2)),  # type: ignore[arg-type]
        Raises(TypeError, "`image` must be a torch.Tensor or an np.ndarray, got list"),
    ),
    Case(
        "karesize-bboxes-shape",
        DATASETS,
        "`karesize_bboxes` of boxes with 3 columns",
        lambda p: karesize_bboxes(np.zeros((2, 3)), (4, 4), (8, 8)),
        Raises(InvalidInputError, "`src_bboxes` must have shape [N, 4], got [2, 3]"),
    ),
    Case(
        "img-broken",
        DATASETS,
        "`read_image` of a file that is not an image",
        lambda p: read_image(_file(p, "broken.png", b"not a png")),
        Raises(ImageReadError, "cannot read image"),
    ),
    Case(
        "img-missing",
        DATASETS,
        "an image dataset item whose file is missing",
        lambda p: ImageBaseDataset([p / "missing.png"])[0],
        Raises(ImageReadError, "FileNotFoundError"),
    ),
    Case(
        "audio-broken",
        DATASETS,
        "an audio dataset item whose `.wav` file is not audio",
        lambda p: AudioBaseDataset([_file(p, "broken.wav", b"RIFF, but not audio")])[0],
        Raises(AudioReadError, "cannot read audio '"),
    ),
    Case(
        "audio-missing",
        DATASETS,
        "an audio dataset item whose file is missing",
        lambda p: AudioBaseDataset([p / "missing.wav"])[0],
        Raises(AudioReadError, "missing.wav"),
    ),
    Case(
        "audio-extension",
        DATASETS,
        "an audio path that is no audio file (`.txt`)",
        lambda p: AudioBaseDataset([p / "notes.txt"]),
        Raises(ValueError, "audio files must end with one of"),
    ),
    Case(
        "audio-rate",
        DATASETS,
        "`sample_rate=0` (or negative, or fractional) for an audio dataset",
        lambda p: AudioBaseDataset([p / "a.wav"], sample_rate=0),
        Raises(ValueError, "`sample_rate` must be a positive whole number"),
    ),
    Case(
        "audio-start",
        DATASETS,
        "a `start_time` column with a negative time",
        lambda p: _csv(p, "label,path,split,is_query,is_gallery,start_time\n0,a.wav,train,,,-1\n"),
        Raises(DataFrameFormatError, "column 'start_time': not a number of seconds >= 0"),
    ),
    Case(
        "text-empty",
        DATASETS,
        "a CSV of texts with an empty `text`",
        lambda p: _csv(p, 'label,text,split,is_query,is_gallery\n0,"  ",train,,\n'),
        Raises(DataFrameFormatError, "column 'text': empty or not a string at row 0 (line 2)"),
    ),
    Case(
        "text-no-tokenizer",
        DATASETS,
        "a text dataset given `tokenizer=None`",
        lambda p: TextBaseDataset(["some text"], tokenizer=None),
        Raises(TypeError, "TextBaseDataset needs a `tokenizer`, got None"),
    ),
    Case(
        "csv-columns",
        DATASETS,
        "CSV without `is_query` / `is_gallery`",
        lambda p: _csv(p, "label,path,split\n0,a.png,train\n"),
        Raises(DataFrameFormatError, "missing required column(s) ['is_query', 'is_gallery']"),
    ),
    Case(
        "csv-label",
        DATASETS,
        "CSV with a non-integer label",
        lambda p: _csv(p, HEADER + "x,a.png,train,,\n"),
        Raises(DataFrameFormatError, "column 'label': not an integer at row 0 (line 2)"),
    ),
    Case(
        "csv-bool",
        DATASETS,
        "CSV with `is_query = maybe`",
        lambda p: _csv(p, HEADER + "0,a.png,validation,maybe,True\n"),
        Raises(DataFrameFormatError, "column 'is_query': not a bool (True/False/1/0) at row 0 (line 2)"),
    ),
    Case(
        "csv-orphan-query",
        DATASETS,
        "CSV with a query whose label is in no gallery row",
        lambda p: _csv(p, HEADER + "0,a.png,validation,True,False\n1,b.png,validation,False,True\n"),
        Raises(DataFrameFormatError, "query label(s) absent from the gallery at row 0 (line 2)"),
    ),
    Case(
        "csv-unparsable",
        DATASETS,
        "a CSV that pandas cannot tokenise",
        lambda p: _csv(p, 'a,"b\n1,2,3,4\n'),
        Raises(DataFrameFormatError, "cannot be read as CSV"),
    ),
    Case(
        "csv-files",
        DATASETS,
        "CSV naming an image file that does not exist (`check_files=True`)",
        lambda p: _csv(p, HEADER + "0,zz.png,train,,\n", check_files=True),
        Raises(DataFrameFormatError, "column 'path': file not found at row 0 (line 2)"),
    ),
    Case(
        "mem-str-labels",
        DATASETS,
        "`InMemoryQueryGalleryDataset` with string labels",
        lambda p: _dataset(["a", "b"]),
        Raises(ValueError, "`labels` must be integers"),
    ),
    # --- config ---
    Case(
        "cfg-unknown-key",
        CONFIG,
        "override of an unknown key `max_epoch=3`",
        lambda p: load_config(overrides=["max_epoch=3"]),
        Raises(ConfigError, "unknown config key 'max_epoch' in the overrides (did you mean 'max_epochs'?)"),
    ),
    Case(
        "cfg-missing-file",
        CONFIG,
        "config file that does not exist",
        lambda p: load_config(p / "nope.yaml"),
        Raises(ConfigError, "not found; shipped configs: ['predict_digits.yaml'"),
    ),
    Case(
        "cfg-registry-name",
        CONFIG,
        "unknown registered name (`optimizer.name: sgdd`)",
        lambda p: build("optimizers", {"name": "sgdd", "args": {}}),
        Raises(RegistryError, "unknown optimizers name 'sgdd' (did you mean 'sgd'?)"),
    ),
    Case(
        "cfg-registry-arg",
        CONFIG,
        "argument the class does not take (`optimizer.args.lrr`)",
        lambda p: _sgd({"lrr": 1}),
        Raises(
            RegistryError,
            "has argument(s) ['lrr'] that optimizers 'sgd' (SGD) does not take (did you mean 'lr'?)",
        ),
    ),
    Case(
        "cfg-lr-str",
        CONFIG,
        "`optimizer.args.lr=abc`",
        lambda p: _sgd({"lr": "abc"}),
        Raises(RegistryError, "`lr` must be a number, got 'abc' (str)"),
    ),
    Case(
        "cfg-key-type",
        CONFIG,
        "`max_epochs=abc` (a top-level key of the wrong type)",
        lambda p: load_config(overrides=["max_epochs=abc"]),
        Raises(ConfigError, "config key `max_epochs` must be int, got 'abc' (str)"),
    ),
    # --- CLI ---
    Case(
        "cli-command",
        CLI,
        "`oml-fast fly` (unknown command)",
        lambda p: _cli("fly"),
        Exits(2, "invalid choice: 'fly'"),
    ),
    Case(
        "cli-unknown-key",
        CLI,
        "`oml-fast train train_digits max_epoch=3`",
        lambda p: _cli("train", "train_digits", "max_epoch=3"),
        Exits(2, "oml-fast: error: unknown config key 'max_epoch'"),
    ),
    Case(
        "cli-no-dataset",
        CLI,
        "`oml-fast validate validate_digits dataset_root=<missing folder>`",
        lambda p: _cli("validate", "validate_digits", f"dataset_root={p / 'none'}"),
        Exits(2, "oml-fast: error: dataset not found"),
    ),
    Case(
        "cli-untrained",
        CLI,
        "`oml-fast predict predict_digits` without `checkpoint` (a randomly initialised model)",
        lambda p: _cli("predict", "predict_digits", f"data_dir={p}"),
        Exits(2, "the extractor has no weights"),
    ),
    Case(
        "cli-check-csv",
        CLI,
        "`oml-fast check-csv` of a malformed CSV",
        lambda p: _cli(
            "check-csv", str(_file(p, "df.csv", HEADER.encode() + b"0,a.png,test,,\n")), "--no-files"
        ),
        Exits(2, "column 'split': value not in"),
    ),
    Case(
        "cli-save-path",
        CLI,
        "`oml-fast predict ... save_path=x.txt`",
        lambda p: _cli(
            "predict", "predict_digits", f"data_dir={p}", "save_path=x.txt", "allow_untrained=true"
        ),
        Exits(2, "`save_path` must end with .pt or .npz"),
    ),
    Case(
        "cli-modality-extractor",
        CLI,
        "`oml-fast predict predict_digits modality=audio` (the config's extractor embeds images)",
        lambda p: _cli(
            "predict", "predict_digits", f"data_dir={p}", "modality=audio", "allow_untrained=true"
        ),
        Exits(2, "`extractor` is 'small_cnn', an extractor of images, but `modality` is 'audio'"),
    ),
    Case(
        "cli-texts-no-tokenizer",
        CLI,
        "`oml-fast train-postprocessor ... modality=texts` without `dataset_args.tokenizer`",
        lambda p: _cli("train-postprocessor", "train_postprocessor_digits", "modality=texts"),
        Exits(2, "`modality: texts` needs `dataset_args.tokenizer`"),
    ),
    Case(
        "cli-empty-text-file",
        CLI,
        "`oml-fast predict ... modality=texts` over a folder with an empty `.txt` file",
        lambda p: _cli(
            "predict",
            "predict_digits",
            f"data_dir={_file(p, 'empty.txt', b' ').parent}",
            "modality=texts",
            "+dataset_args.tokenizer=tok",
            "extractor=hf_wrapper",
            "extractor.args.model=bert",
            "allow_untrained=true",
        ),
        Exits(2, "is empty: every file under `data_dir` must hold a text"),
    ),
    # ===== known gaps: `outcome` is the behaviour wanted; `today` what happens now =====
    Case(
        "knn-meta",
        OPS,
        "`knn`: `queries` on CPU, `gallery` on the meta device",
        lambda p: knn(_x(), _x(5).to("meta"), 2),
        Raises(ValueError, "same device"),
    ),
    Case(
        "rm-n-gt-hits",
        OPS,
        "`retrieval_metrics` with `n_gt` below the number of hits (was: precision@3 = 3.0)",
        lambda p: retrieval_metrics(
            torch.ones(1, 3, dtype=torch.bool), torch.tensor([1]), torch.tensor([3]), [3], [3], [3]
        ),
        Raises(
            ValueError,
            "`n_gt` must be at least the number of relevant retrieved items, got 1 with 3 relevant retrieved "
            "for query 0",
        ),
    ),
    Case(
        "rm-meta",
        OPS,
        "`retrieval_metrics`: `is_relevant` on CPU, `n_gt` on the meta device",
        lambda p: retrieval_metrics(REL, torch.tensor([1]).to("meta"), torch.tensor([2]), [1], [1], [1]),
        Raises(ValueError, "`n_gt` must be on cpu, got [1] int64 on meta"),
    ),
    Case(
        "hm-str-labels",
        OPS,
        "`hard_mining` with string labels",
        lambda p: hard_mining(_x(), ["a", "a", "b", "b"], 1, 1),  # type: ignore[arg-type]
        Raises((ValueError, TypeError), "`labels`"),
    ),
    Case(
        "hm-nan",
        OPS,
        "`hard_mining` with a NaN embedding (was: the NaN row never selected, dropped by the losses)",
        lambda p: hard_mining(_nan_rows(), LABELS, 1, 1),
        Raises(
            ValueError,
            "`embeddings` contains NaN or inf values ([4, 1] float32 on cpu); hard_mining needs finite embeddings",
        ),
    ),
    Case(
        "hm-inf",
        OPS,
        "`hard_mining` with an inf embedding",
        lambda p: hard_mining(torch.tensor([[0.0], [float("inf")], [1.0], [2.0]]), LABELS, 1, 1),
        Raises(ValueError, "`embeddings` contains NaN or inf values"),
    ),
    Case(
        "hm-huge-n",
        OPS,
        "`hard_mining` with `n_positive = 2**40` (was: can't allocate 35184372088832 bytes)",
        lambda p: hard_mining(_x(), LABELS, 2**40, 1),
        Raises(
            ValueError,
            "`n_positive` must be at most max(B, 65536) = 65536 (an anchor has at most B - 1 positives), "
            "got 1099511627776",
        ),
    ),
    Case(
        "hm-meta",
        OPS,
        "`hard_mining`: `embeddings` on CPU, `labels` on the meta device",
        lambda p: hard_mining(_x(), LABELS.to("meta"), 1, 1),
        Raises(ValueError, "`labels` must be on cpu, got [4] int64 on meta"),
    ),
    Case(
        "hist-huge-n-bins",
        OPS,
        "FNMR's private `_pair_distance_histogram` with `n_bins = 2**40` (was: can't allocate)",
        lambda p: pair_distance_histogram(
            torch.zeros(1, 2), torch.tensor([0]), torch.tensor([0, 1]), lower=0.0, upper=1.0, n_bins=2**40
        ),
        Raises(ValueError, "`n_bins` must be at most 1048576 (2**20), got 1099511627776"),
    ),
    Case(
        "pd-half-cpu",
        OPS,
        "`pairwise_distance` of float16 embeddings on CPU",
        lambda p: pairwise_distance(_x().half(), _x().half()),
        Returns(
            "float16 distances, computed in float32 (the CPU half policy of `knn` and `hard_mining`)",
            lambda r: r.dtype == torch.float16,
        ),
    ),
    Case(
        "crm-duplicates",
        FUNCTIONAL,
        "`calc_retrieval_metrics` with one relevant id retrieved 3 times (was: precision@3 = 3.0)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([0, 0, 0])], [torch.tensor([0])], None, (3,), (3,), (3,)
        ),
        Raises(ValueError, "`retrieved_ids` must be unique within a query, got 0 twice for query 0"),
    ),
    Case(
        "crm-gt-duplicates",
        FUNCTIONAL,
        "`calc_retrieval_metrics` with a gt id listed twice (n_gt would count it twice)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([0, 1])], [torch.tensor([1, 1])], None, (1,), (1,), (1,)
        ),
        Raises(ValueError, "`gt_ids` must be unique within a query, got 1 twice for query 0"),
    ),
    Case(
        "crm-negative-gt",
        FUNCTIONAL,
        "`calc_retrieval_metrics` with a negative gt id (was: credit from another query's ids)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([3]), torch.tensor([0])],
            [torch.tensor([3]), torch.tensor([-1])],
            None,
            (1,),
            (1,),
            (1,),
        ),
        Raises(ValueError, "`gt_ids` must hold gallery indices >= 0, got -1 for query 1"),
    ),
    Case(
        "crm-fraction-ids",
        FUNCTIONAL,
        "`calc_retrieval_metrics` with a retrieved id 1.5 (would be truncated to 1, a relevant id)",
        lambda p: calc_retrieval_metrics([torch.tensor([1.5])], [torch.tensor([1])], None, (1,), (1,), (1,)),
        Raises(ValueError, "`retrieved_ids` must hold integer gallery indices, got 1.5"),
    ),
    Case(
        "crm-negative-retrieved",
        FUNCTIONAL,
        "`calc_retrieval_metrics` with a negative retrieved id (would read as padding)",
        lambda p: calc_retrieval_metrics(
            [torch.tensor([-1, 0])], [torch.tensor([0])], None, (1,), (1,), (1,)
        ),
        Raises(ValueError, "`retrieved_ids` must hold gallery indices >= 0, got -1 for query 0"),
    ),
    Case(
        "fnmr-nan",
        FUNCTIONAL,
        "`calc_fnmr_at_fmr` with a NaN distance (was: FNMR 0.0, the best score)",
        lambda p: calc_fnmr_at_fmr(np.array([1.0, np.nan]), np.array([2.0, np.nan]), (0.5,)),
        Raises(ValueError, "`pos_dist` contains NaN values; FNMR@FMR needs comparable distances"),
    ),
    Case(
        "fnmr-all-pairs-lone-ids",
        FUNCTIONAL,
        "`calc_fnmr_at_fmr_all_pairs` with `query_ids` but no `gallery_ids` (was: ignored silently)",
        lambda p: calc_fnmr_at_fmr_all_pairs(_x(), _x(), LABELS, LABELS, (0.5,), torch.arange(4), None),
        Raises(
            ValueError,
            "`query_ids` and `gallery_ids` must be given together (or both omitted), got only `query_ids`",
        ),
    ),
    Case(
        "fnmr-all-pairs-nan",
        FUNCTIONAL,
        "`calc_fnmr_at_fmr_all_pairs` with a NaN embedding",
        lambda p: calc_fnmr_at_fmr_all_pairs(_nan_rows(), _x(4, 1), LABELS, LABELS, (0.5,)),
        Raises(
            ValueError,
            "`queries` contains NaN or inf values ([4, 1] float32 on cpu); FNMR@FMR needs finite embeddings",
        ),
    ),
    Case(
        "em-duplicate-index",
        EM,
        "`update` with a dataset index given twice (was: one of the two embeddings kept silently)",
        lambda p: _em_update(_x(5, 2), [0, 1, 2, 3, 3]),
        Raises(ValueError, "`indices` must not repeat a dataset index, got 3 2 times in one batch"),
    ),
    Case(
        "em-index-fed-again",
        EM,
        "a second `update` with an index already collected",
        lambda p: (lambda m: m.update(_x(1, 2), [1]))(_em_update(_x(2, 2), [0, 1])),
        Raises(ValueError, "`indices` holds 1, already collected by an earlier `update` since `setup()`"),
    ),
    Case(
        "rr-duplicate-tail",
        RR,
        "a gallery id repeated after the 100th position of a list",
        lambda p: RetrievalResults(
            [torch.arange(102).float()], [torch.cat([torch.arange(101), torch.tensor([5])])]
        ),
        Raises(InvalidRetrievalResultsError, "unique"),
    ),
    Case(
        "rr-negative-id",
        RR,
        "a negative retrieved id (would read as padding)",
        lambda p: RetrievalResults([torch.tensor([0.1, 0.2])], [torch.tensor([3, -1])]),
        Raises(InvalidRetrievalResultsError, "indices >= 0"),
    ),
    Case(
        "mem-bool-strings",
        DATASETS,
        "`InMemoryQueryGalleryDataset(is_query=['False', 'False'])` (was: every item a query)",
        lambda p: _dataset([0, 1], is_query=np.array(["False", "False"])),
        Raises(ValueError, "`is_query` must hold booleans (True/False or 1/0), got <U5 values such as"),
    ),
    Case(
        "mem-bool-numbers",
        DATASETS,
        "`InMemoryQueryGalleryDataset(is_gallery=[2, 0])`",
        lambda p: _dataset([0, 1], is_gallery=[2, 0]),
        Raises(
            ValueError, "`is_gallery` must hold booleans (True/False or 1/0), got int64 values such as [2, 0]"
        ),
    ),
    Case(
        "mem-bool-objects",
        DATASETS,
        "`InMemoryQueryGalleryDataset(is_query=<object array of True/False>)` (a pandas column)",
        lambda p: _dataset([0, 1], is_query=np.array([True, False], dtype=object)),
        Returns("accepted: the first item is the only query", lambda r: r.get_query_ids().tolist() == [0]),
    ),
    Case(
        "csv-huge-bbox",
        DATASETS,
        "CSV with a bounding-box coordinate 99999999999999999999999 (was: `OverflowError`)",
        lambda p: _csv(
            p,
            "label,path,split,is_query,is_gallery,x_1,x_2,y_1,y_2\n0,a.png,train,,,0,99999999999999999999999,0,5\n",
        ),
        Raises(DataFrameFormatError, "bounding box: coordinates are not integers in int64 at row 0 (line 2)"),
    ),
    Case(
        "csv-huge-label",
        DATASETS,
        "CSV with the label 99999999999999999999999 (was: `OverflowError`)",
        lambda p: _csv(p, HEADER + "99999999999999999999999,a.png,train,,\n"),
        Raises(
            DataFrameFormatError, "column 'label': outside the int64 range [-2**63, 2**63) at row 0 (line 2)"
        ),
    ),
]


def _param(case: Case) -> Any:
    marks = (
        [pytest.mark.xfail(strict=True, reason=f"known gap ({case.gap}): {case.today}")] if case.gap else []
    )
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    outcome = case.outcome
    if isinstance(outcome, Raises):
        with pytest.raises(BaseException) as info:
            case.call(tmp_path)
        error = info.value
        if isinstance(outcome.error, tuple):
            assert isinstance(error, outcome.error), f"{type(error).__name__}: {error}"
        else:
            assert type(error) is outcome.error, f"{type(error).__name__}: {error}"
        assert outcome.fragment in str(error)
    elif isinstance(outcome, Warns):
        with pytest.warns(outcome.category) as record:
            result = case.call(tmp_path)
        assert any(outcome.fragment in str(w.message) for w in record), [str(w.message) for w in record]
        assert outcome.check(result)
    elif isinstance(outcome, Returns):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = case.call(tmp_path)
        assert outcome.check(result)
    else:
        code, stderr = case.call(tmp_path)
        assert code == outcome.code, stderr
        assert outcome.fragment in stderr


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(bool(case.gap) == bool(case.today) for case in CASES)


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_hostile_inputs_doc", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doc_is_up_to_date() -> None:
    expected = _generator().render(CASES)
    assert DOC.read_text() == expected, (
        "docs/hostile_inputs.md is stale: run `python scripts/gen_hostile_inputs_doc.py`"
    )
