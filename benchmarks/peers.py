"""Optional peers for side-by-side benchmarks and cross-checks: OML 4.0, pytorch-metric-learning, faiss.

None of them is a dependency of oml_fast or of its tests. They live in a separate venv made by
``scripts/setup_peers.sh`` (same CPU torch as oml_fast, so an in-place build of oml_fast imports there
too with ``PYTHONPATH=<checkout>``). Every function here returns ``None`` (with a reason) when a peer
is missing, so benchmarks can say which columns they skipped.

OML 4.0 imports torchvision, albumentations and cv2 at module level, but the metric, retrieval, loss,
miner and sampler code paths never call them; the only torchvision for torch 2.13 fails to import
beside the CPU torch. :func:`import_oml` therefore registers inert stand-in modules for those
packages (and for the optional loggers/models OML imports at module level) before ``import oml``.

    python benchmarks/peers.py                  # prints which peers import, and why not
    python benchmarks/peers.py --require oml    # ... and exits 1 unless OML imports
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

# Packages OML 4.0 imports at module level that the metric/retrieval/loss/miner/sampler paths never
# use. Only stubbed when the real package is not importable.
OML_STAND_IN_PACKAGES = ("torchvision", "albumentations", "cv2", "pytorch_grad_cam")

_import_errors: dict[str, str] = {}


class _StandInMeta(type):
    """Metaclass of stand-in classes: any attribute is another stand-in class (``Enum.MEMBER``)."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _stand_in_class(f"{cls.__name__}.{name}")


def _stand_in_class(name: str) -> type:
    # `value` keyword: OML probes albumentations.PadIfNeeded's signature for "value" or "fill".
    def _init(self: Any, *args: Any, value: Any = None, **kwargs: Any) -> None:
        pass

    def _call(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name} is an inert stand-in (benchmarks/peers.py); it cannot be called")

    return _StandInMeta(name, (), {"__init__": _init, "__call__": _call, "__module__": "peers.stand_in"})


class _StandInModule(types.ModuleType):
    """A module whose every public attribute is a stand-in class (usable as a base class or value)."""

    __path__: list[str] = []  # a package, so that `import torchvision.ops` works

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _stand_in_class(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``import pkg`` and ``import pkg.any.sub.module`` for the stubbed packages."""

    def __init__(self, packages: set[str]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname.split(".")[0] in self.packages:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name)
        module.__path__ = []
        module.__stand_in__ = True  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _real_package_imports(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install (torchvision's missing nms op) counts as absent
        for key in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[key]
        return False
    return True


def install_oml_stand_ins() -> list[str]:
    """Registers stand-ins for the packages in :data:`OML_STAND_IN_PACKAGES` that do not import.

    Idempotent. Returns the names that are stubbed.
    """
    finder = next((f for f in sys.meta_path if isinstance(f, _StandInFinder)), None)
    if finder is None:
        stubbed = {name for name in OML_STAND_IN_PACKAGES if not _real_package_imports(name)}
        finder = _StandInFinder(stubbed)
        sys.meta_path.insert(0, finder)
    return sorted(finder.packages)


def import_oml() -> types.ModuleType | None:
    """``import oml`` (OML 4.x) with stand-ins for its unused image-side imports, or ``None``.

    On failure the reason is in ``unavailable_reason("oml")``. Also imports the submodules the
    cross-checks and benchmarks use, so that a missing one is found here.
    """
    if "oml" in _import_errors:
        return None
    try:
        install_oml_stand_ins()
        oml = importlib.import_module("oml")
        for sub in (
            "oml.functional.metrics",
            "oml.metrics.embeddings",
            "oml.retrieval.retrieval_results",
            "oml.retrieval.postprocessors.algo",
            "oml.losses.triplet",
            "oml.losses.arcface",
            "oml.losses.surrogate_precision",
            "oml.miners.inbatch_all_tri",
            "oml.miners.inbatch_hard_tri",
            "oml.miners.inbatch_nhard_tri",
            "oml.samplers.balance",
        ):
            importlib.import_module(sub)
    except Exception as error:  # noqa: BLE001 - any import failure means "peer unavailable"
        _import_errors["oml"] = f"{type(error).__name__}: {error}"
        return None
    return oml


def why_oml_is_unavailable() -> str | None:
    """``None`` when OML 4.x imports (its stand-ins then registered), else the reason.

    Looks for the package before importing it, so that a process without OML gets no stand-ins (they
    would serve ``import torchvision`` & co. for the rest of the process).
    """
    if importlib.util.find_spec("oml") is None:
        return "OML 4.x is not installed here (use the peers venv: bash scripts/setup_peers.sh)"
    if import_oml() is None:
        return f"OML 4.x does not import: {unavailable_reason('oml')}"
    return None


def make_oml_query_gallery_dataset(
    labels: Any,
    is_query: Any = None,
    is_gallery: Any = None,
    categories: Any = None,
    sequences: Any = None,
    embeddings: Any = None,
) -> Any:
    """An OML 4.x ``IQueryGalleryLabeledDataset`` built from arrays (as OML's own tests build one:
    labels, ``is_query``, ``is_gallery``, optional ``category`` / ``sequence`` columns in
    ``extra_data``). OML's EmbeddingMetrics and RetrievalResults read relevance from it only when it
    is an instance of OML's interface, so oml_fast's in-memory dataset cannot stand in for it.

    Requires :func:`import_oml` to have succeeded. ``is_query`` / ``is_gallery`` default to all items.
    """
    import numpy as np
    import torch
    from oml.interfaces.datasets import IQueryGalleryLabeledDataset

    labels_t = torch.as_tensor(np.asarray(labels)).long()
    n = len(labels_t)
    query = (
        torch.ones(n, dtype=torch.bool) if is_query is None else torch.as_tensor(np.asarray(is_query)).bool()
    )
    gallery = (
        torch.ones(n, dtype=torch.bool)
        if is_gallery is None
        else torch.as_tensor(np.asarray(is_gallery)).bool()
    )

    class EmbeddingsQueryGalleryLabeledDataset(IQueryGalleryLabeledDataset):
        input_tensors_key = "input_tensors"
        index_key = "idx"
        labels_key = "labels"

        def __init__(self) -> None:
            self.extra_data: dict[str, Any] = {}
            if categories is not None:
                self.extra_data["category"] = np.asarray(categories)
            if sequences is not None:
                self.extra_data["sequence"] = np.asarray(sequences)

        def __len__(self) -> int:
            return n

        def __getitem__(self, item: int) -> dict[str, Any]:
            tensors = embeddings[item] if embeddings is not None else torch.tensor(item)
            return {self.input_tensors_key: tensors, self.index_key: item, self.labels_key: labels_t[item]}

        def get_labels(self) -> np.ndarray:
            return labels_t.numpy()

        def get_query_ids(self) -> torch.Tensor:
            return query.nonzero().view(-1)

        def get_gallery_ids(self) -> torch.Tensor:
            return gallery.nonzero().view(-1)

    return EmbeddingsQueryGalleryLabeledDataset()


def _import_plain(name: str) -> types.ModuleType | None:
    if name in _import_errors:
        return None
    try:
        return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001
        _import_errors[name] = f"{type(error).__name__}: {error}"
        return None


def import_pml() -> types.ModuleType | None:
    """``import pytorch_metric_learning`` or ``None`` (reason: ``unavailable_reason``)."""
    return _import_plain("pytorch_metric_learning")


def import_faiss() -> types.ModuleType | None:
    """``import faiss`` or ``None`` (reason: ``unavailable_reason``)."""
    return _import_plain("faiss")


def unavailable_reason(name: str) -> str | None:
    """Why the peer ``name`` ("oml", "pytorch_metric_learning", "faiss") did not import, or None."""
    return _import_errors.get(name)


def available_peers() -> dict[str, dict[str, Any]]:
    """``{name: {"available": bool, "version": str | None, "reason": str | None}}`` for each peer."""
    importers = {"oml": import_oml, "pytorch_metric_learning": import_pml, "faiss": import_faiss}
    report = {}
    for name, importer in importers.items():
        module = importer()
        report[name] = {
            "available": module is not None,
            "version": getattr(module, "__version__", None) if module is not None else None,
            "reason": unavailable_reason(name),
        }
    if report["oml"]["available"]:
        report["oml"]["stand_ins"] = install_oml_stand_ins()
    return report


def _main(argv: list[str] | None = None) -> int:
    import argparse

    import torch

    parser = argparse.ArgumentParser(description="Prints which peers import, and why not.")
    parser.add_argument(
        "--require", action="append", default=[], help="exit 1 unless this peer imports (repeatable)"
    )
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}")
    report = available_peers()
    for name, info in report.items():
        if info["available"]:
            extra = f" (stand-ins: {', '.join(info['stand_ins'])})" if info.get("stand_ins") else ""
            print(f"  {name:<24} {info['version']}{extra}")
        else:
            print(f"  {name:<24} unavailable: {info['reason']}")
    missing = [name for name in args.require if not report.get(name, {}).get("available")]
    if missing:
        print(f"required peers unavailable: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
