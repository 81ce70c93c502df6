"""The package imports downwards only: each layer may import the layers below it, never above or beside.

    const | errors <- interfaces <- ops <- reference; ops <- functional | visualization | samplers | miners | transforms
          <- losses | datasets | models <- utils <- retrieval <- metrics <- distributed <- registry | ddp
          <- inference <- lightning <- pipelines

Imports are read from the source (``import`` statements anywhere in a module, lazy ones inside
functions included; only ``if TYPE_CHECKING:`` blocks are skipped, as they never run). Packages in
one layer are independent of each other. ``oml_fast.reference`` (the pure-PyTorch twins) is for
tests: no other package imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "oml_fast"

# Lowest first. A package may import its own layer's modules only from itself.
LAYERS: list[set[str]] = [
    {"const", "errors"},
    {"interfaces", "_C", "_build_info"},
    {"ops"},
    {"reference"},  # the twins share the ops' argument checks (oml_fast.ops.checks)
    {"functional", "visualization", "samplers", "miners", "transforms"},
    {"losses", "datasets", "models"},
    {"utils"},  # OML's helpers: the mock dataset and the dataframe check sit on the datasets
    {"retrieval"},
    {"metrics"},
    {"distributed"},
    {"registry", "ddp"},
    {"inference"},  # runs models over datasets, DDP-aware
    {"lightning"},
    {"pipelines"},
    {"<root>"},  # oml_fast/__init__.py
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
# Allowed exceptions to the rule above, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("<root>", "ops"): "importing the package registers the ops' fake kernels and autograd formulas",
    # Only oml_fast/lightning/pipelines/{train,validate,predict,train_postprocessor}.py (checked below).
    ("lightning", "pipelines"): "OML's module path for the pipelines; the code lives in oml_fast.pipelines",
    # Only oml_fast/registry/loggers.py (checked below).
    ("registry", "lightning"): "OML's oml.registry.loggers holds the pipelines' loggers, which are Lightning "
    "loggers (oml_fast.lightning.pipelines.logging)",
}


def _unit(module: str) -> str:
    """``oml_fast.retrieval.x`` -> ``retrieval``; ``oml_fast`` -> ``<root>``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _module_name(path: Path) -> tuple[str, str]:
    """(module, the package its relative imports resolve against)."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _imports(path: Path) -> list[tuple[str, int]]:
    """Modules of oml_fast imported by ``path`` (with line numbers), outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    _, package = _module_name(path)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                if node.module:
                    found.append((".".join([*base, node.module]), node.lineno))
                else:
                    found += [(".".join([*base, alias.name]), node.lineno) for alias in node.names]
            elif node.module:
                found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name == "oml_fast" or name.startswith("oml_fast.")]


SOURCES = sorted(PACKAGE_ROOT.rglob("*.py"))


def test_every_package_has_a_layer():
    units = {_unit(_module_name(path)[0]) for path in SOURCES}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"packages without a layer: {missing}; add them to LAYERS in {__file__}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_imports_go_downwards(path: Path):
    importer = _unit(_module_name(path)[0])
    if importer not in LAYER_OF:
        pytest.skip("reported by test_every_package_has_a_layer")
    wrong = []
    for name, line in _imports(path):
        imported = _unit(name)
        if imported == importer or (importer, imported) in ALLOWED:
            continue
        if imported == "reference" or LAYER_OF.get(imported, len(LAYERS)) >= LAYER_OF[importer]:
            wrong.append(f"line {line}: {name} ({imported!r} is not below {importer!r})")
    assert not wrong, f"{path.relative_to(PACKAGE_ROOT.parent)} imports upwards or sideways:\n" + "\n".join(
        wrong
    )


# The modules that use each exception of ALLOWED; any other importer of the pair is an error.
ALLOWED_IMPORTERS: dict[tuple[str, str], set[str]] = {
    ("lightning", "pipelines"): {
        f"oml_fast.lightning.pipelines.{m}" for m in ("train", "validate", "predict", "train_postprocessor")
    },
    ("registry", "lightning"): {"oml_fast.registry.loggers"},
}


def test_allowed_exceptions_are_used_only_by_their_modules():
    wrong = []
    for path in SOURCES:
        module = _module_name(path)[0]
        for name, line in _imports(path):
            pair = (_unit(module), _unit(name))
            if pair in ALLOWED_IMPORTERS and module not in ALLOWED_IMPORTERS[pair]:
                wrong.append(f"{module} line {line}: {name}")
    assert not wrong, "imports that use an exception of ALLOWED outside its modules:\n" + "\n".join(wrong)
