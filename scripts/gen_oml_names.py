"""Writes tests/compat/oml_names.json: OML 4.0's public names (module, name, kind, signature), read from
OML's installed source with ``ast`` (nothing of OML is imported or run, and none of its code is copied:
only names, parameter lists and literal default values are recorded).

Usage: python scripts/gen_oml_names.py [--oml-root PATH] [--check]
  --oml-root: the ``oml`` package folder (default: ``oml`` in the site-packages of ``.venv-peers`` beside
              this checkout or beside the main checkout; ``bash scripts/setup_peers.sh`` makes it).
  --check:    exit 1 if the committed list differs from the generated one.

What counts as public, per module of ``oml`` (vendored third-party code in ``external*`` folders, the
Hydra config package and private modules left out):
- the names of ``__all__`` when the module has one;
- otherwise, in a package's ``__init__``, the names it imports from ``oml`` and the names it defines;
- otherwise the names the module defines (functions, classes, assignments) not starting with ``_``.
Each name is followed through re-exports to its definition. Entries:
``{"module", "name", "kind": function|class|constant|module|other, "parameters": [...] | null,
"value": <literal> (constants)}``; classes also carry their public methods as entries named
``Class.method``. A parameter is ``{"name", "kind", "default": {"value": v} | {"expr": "source"}}``
(no ``default`` key: required). ``kind`` is ``inspect.Parameter``'s kind name.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "compat" / "oml_names.json"
SKIPPED_PARTS = ("configs", "__pycache__")


def default_oml_root() -> Path | None:
    for checkout in (ROOT, ROOT.parents[1] / "main", Path("/work/main")):
        for found in sorted(checkout.glob(".venv-peers/lib/python*/site-packages/oml")):
            return found
    return None


@dataclass
class Module:
    name: str
    tree: ast.Module
    is_package: bool
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (module, name|None)
    defined: dict[str, ast.AST] = field(default_factory=dict)
    all_names: list[str] | None = None


def _module_name(path: Path, oml_root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(oml_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _literal_list(node: ast.AST) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return values if len(values) == len(node.elts) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_list(node.left), _literal_list(node.right)
        return None if left is None or right is None else left + right
    return None


def parse_module(path: Path, oml_root: Path) -> Module:
    name, is_package = _module_name(path, oml_root)
    module = Module(name, ast.parse(path.read_text(), filename=str(path)), is_package)
    package = name if is_package else name.rsplit(".", 1)[0]
    for node in module.tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                module.imports[alias.asname or alias.name] = (source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module.imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            module.defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for item in names:
                    if isinstance(item, ast.Name):
                        module.defined[item.id] = node
                        if item.id == "__all__" and node.value is not None:
                            module.all_names = _literal_list(node.value)
    return module


class Index:
    """Every parsed module of ``oml``, with name resolution across re-exports."""

    def __init__(self, oml_root: Path):
        self.modules: dict[str, Module] = {}
        for path in sorted(oml_root.rglob("*.py")):
            relative = path.relative_to(oml_root).parts
            if any(p in SKIPPED_PARTS or p.startswith("external") for p in relative):
                continue
            module = parse_module(path, oml_root)
            self.modules[module.name] = module

    def resolve(self, module_name: str, name: str, depth: int = 0) -> tuple[str, str, ast.AST | None]:
        """(defining module, name there, node) of ``module_name.name``; node is None for a module or
        something outside oml."""
        module = self.modules.get(module_name)
        if module is None or depth > 20:
            return module_name, name, None
        if name in module.defined:
            return module_name, name, module.defined[name]
        if name in module.imports:
            source, original = module.imports[name]
            if original is None or f"{source}.{original}" in self.modules:
                return f"{source}.{original}" if original else source, "", None
            if source.split(".")[0] == "oml":
                return self.resolve(source, original, depth + 1)
            return source, original, None
        if f"{module_name}.{name}" in self.modules:
            return f"{module_name}.{name}", "", None
        return module_name, name, None

    def public_names(self, module: Module) -> list[str]:
        if module.all_names is not None:
            return list(dict.fromkeys(module.all_names))
        defined = [n for n in module.defined if not n.startswith("_")]
        if module.is_package:
            imported = [
                a
                for a, (src, _) in module.imports.items()
                if src.split(".")[0] == "oml" and not a.startswith("_")
            ]
            return list(dict.fromkeys(imported + defined))
        return defined

    def literal(self, module_name: str, node: ast.AST, depth: int = 0) -> dict[str, Any]:
        """``{"value": v}`` for a literal expression (names of literal constants followed), else ``{"expr": src}``."""
        try:
            return {"value": _jsonable(ast.literal_eval(node))}
        except (ValueError, TypeError, SyntaxError, RecursionError):
            pass
        if isinstance(node, ast.Name) and depth < 10:
            where, name, target = self.resolve(module_name, node.id)
            if isinstance(target, (ast.Assign, ast.AnnAssign)) and target.value is not None:
                found = self.literal(where, target.value, depth + 1)
                if "value" in found:
                    return found
        return {"expr": ast.unparse(node)}

    def parameters(
        self, module_name: str, function: ast.FunctionDef | ast.AsyncFunctionDef, bound: bool
    ) -> list[dict[str, Any]]:
        args = function.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(
            args.defaults
        )
        out: list[dict[str, Any]] = []
        for position, (arg, default) in enumerate(zip(positional, defaults)):
            if bound and position == 0:
                continue
            kind = "POSITIONAL_ONLY" if position < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
            out.append(self._parameter(module_name, arg.arg, kind, default))
        if args.vararg:
            out.append({"name": args.vararg.arg, "kind": "VAR_POSITIONAL"})
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            out.append(self._parameter(module_name, arg.arg, "KEYWORD_ONLY", default))
        if args.kwarg:
            out.append({"name": args.kwarg.arg, "kind": "VAR_KEYWORD"})
        return out

    def _parameter(self, module_name: str, name: str, kind: str, default: ast.expr | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "kind": kind}
        if default is not None:
            entry["default"] = self.literal(module_name, default)
        return entry

    def class_init(self, module_name: str, cls: ast.ClassDef, depth: int = 0) -> list[dict[str, Any]] | None:
        """Parameters of the class's ``__init__``, inherited from oml bases; None when defined outside oml."""
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__init__":
                return self.parameters(module_name, node, bound=True)
        for base in cls.bases:
            if isinstance(base, ast.Name) and depth < 20:
                where, _, target = self.resolve(module_name, base.id)
                if isinstance(target, ast.ClassDef):
                    return self.class_init(where, target, depth + 1)
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list, set, frozenset)):
        return [
            _jsonable(v) for v in (sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value)
        ]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {ast.unparse(d).split("(")[0].split(".")[-1] for d in node.decorator_list}


def entries_of(index: Index, module: Module) -> list[dict[str, Any]]:
    entries = []
    for name in index.public_names(module):
        where, resolved_name, node = index.resolve(module.name, name)
        entry: dict[str, Any] = {"module": module.name, "name": name}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            entry.update(kind="function", parameters=index.parameters(where, node, bound=False))
        elif isinstance(node, ast.ClassDef):
            entry.update(kind="class", parameters=index.class_init(where, node))
            entries.append(entry)
            for item in node.body:
                if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) or item.name.startswith("_"):
                    continue
                decorators = _decorators(item)
                kind = "property" if decorators & {"property", "cached_property"} else "method"
                bound = "staticmethod" not in decorators
                method: dict[str, Any] = {"module": module.name, "name": f"{name}.{item.name}", "kind": kind}
                method["parameters"] = (
                    None if kind == "property" else index.parameters(where, item, bound=bound)
                )
                entries.append(method)
            continue
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            entry.update(kind="constant", parameters=None)
            if node.value is not None:
                entry.update(index.literal(where, node.value))
        elif where in index.modules and not resolved_name:
            entry.update(kind="module", parameters=None)
        else:
            entry.update(kind="other", parameters=None)
        entries.append(entry)
    return entries


def generate(oml_root: Path) -> dict[str, Any]:
    index = Index(oml_root)
    version = "unknown"
    for metadata in oml_root.parent.glob("open_metric_learning-*.dist-info/METADATA"):
        version = next(
            (
                line.split(":", 1)[1].strip()
                for line in metadata.read_text().splitlines()
                if line.startswith("Version:")
            ),
            version,
        )
    entries = [e for name in sorted(index.modules) for e in entries_of(index, index.modules[name])]
    return {
        "about": "OML's public names, generated by scripts/gen_oml_names.py from OML's source (names and "
        "signatures only); checked against oml_fast by tests/compat/test_oml_names.py",
        "oml_version": version,
        "modules": sorted(index.modules),
        "entries": entries,
    }


def render(data: dict[str, Any]) -> str:
    """JSON with one entry per line (short diffs when OML or the generator changes)."""
    head = {k: v for k, v in data.items() if k != "entries"}
    lines = [json.dumps(e, separators=(",", ":")) for e in data["entries"]]
    body = json.dumps(head, indent=1)[:-2]
    return body + ',\n "entries": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oml-root", type=Path, default=None)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    oml_root = args.oml_root or default_oml_root()
    if oml_root is None or not (oml_root / "__init__.py").is_file():
        print(
            "OML's source was not found: pass --oml-root (bash scripts/setup_peers.sh installs OML 4.0)",
            file=sys.stderr,
        )
        return 2
    text = render(generate(oml_root))
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_text() == text
        print(
            f"{OUTPUT.relative_to(ROOT)} is {'up to date' if same else 'out of date: run scripts/gen_oml_names.py'}"
        )
        return 0 if same else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(json.loads(text)['entries'])} entries from {oml_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
