"""Compares one entry of oml_names.json (an OML 4.0 public name) with ``oml_fast`` at the same path.

Kept apart from the test module so that a script can list every difference:
``python -m tests.compat.oml_names`` prints them, grouped by module; ``python -m tests.compat.oml_names
--allow-lists`` prints what the allow-lists of test_oml_names.py miss or hold in vain.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NAMES_FILE = Path(__file__).with_name("oml_names.json")
_MISSING = object()


def load_entries() -> list[dict[str, Any]]:
    return json.loads(NAMES_FILE.read_text())["entries"]


def key_of(entry: dict[str, Any]) -> str:
    return f"{entry['module']}:{entry['name']}"


def our_module_name(oml_module: str) -> str:
    return "oml_fast" + oml_module[len("oml") :]


def _normalised(value: Any) -> Any:
    """A default or constant value in the JSON's terms (tuples and sets as lists, paths as strings)."""
    if isinstance(value, (tuple, list)):
        return [_normalised(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_normalised(v) for v in sorted(value, key=repr)]
    if isinstance(value, dict):
        return {str(k): _normalised(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def find_ours(entry: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """``(owner, object, problem)``: our object at the entry's path (``owner`` is its class for a method)."""
    module_name = our_module_name(entry["module"])
    try:
        owner: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        return None, None, f"module {module_name} is missing ({error})"
    obj = owner
    parts = entry["name"].split(".")
    for position, part in enumerate(parts):
        owner = obj
        found = inspect.getattr_static(obj, part, _MISSING) if position else getattr(obj, part, _MISSING)
        if found is _MISSING and position:
            found = getattr(obj, part, _MISSING)
        if found is _MISSING:
            return None, None, f"{module_name} has no {'.'.join(parts[: position + 1])}"
        obj = found
    return owner, obj, None


def our_parameters(entry: dict[str, Any], owner: Any, obj: Any) -> list[inspect.Parameter] | None:
    if entry["kind"] == "method":
        function = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
        if not callable(function):
            return None
        parameters = list(inspect.signature(function).parameters.values())
        bound = not isinstance(obj, staticmethod)
        return parameters[1:] if bound and parameters else parameters
    return list(inspect.signature(obj).parameters.values())


def compare_parameters(expected: list[dict[str, Any]], ours: list[inspect.Parameter]) -> list[str]:
    problems = []
    names = [p["name"] for p in expected]
    our_names = [p.name for p in ours]
    if names != our_names:
        missing = [n for n in names if n not in our_names]
        extra = [n for n in our_names if n not in names]
        detail = f"; missing {missing}" if missing else ""
        detail += f"; extra {extra}" if extra else ""
        problems.append(f"parameters ({', '.join(names)}) vs ours ({', '.join(our_names)}){detail}")
    ours_by_name = {p.name: p for p in ours}
    for parameter in expected:
        mine = ours_by_name.get(parameter["name"])
        if mine is None:
            continue
        if mine.kind.name != parameter["kind"]:
            problems.append(f"`{mine.name}` is {mine.kind.name}, OML's is {parameter['kind']}")
        default = parameter.get("default")
        has_default = mine.default is not inspect.Parameter.empty
        if (default is not None) != has_default:
            problems.append(f"`{mine.name}` {'has' if has_default else 'lacks'} a default, unlike OML's")
        elif default is not None and "value" in default and _normalised(mine.default) != default["value"]:
            problems.append(f"`{mine.name}` defaults to {mine.default!r}, OML's to {default['value']!r}")
    return problems


def _assigned_on_instances(cls: type, attribute: str) -> bool:
    """Whether a method of ``cls`` or of one of its bases assigns ``self.<attribute>`` (an instance attribute
    standing in for OML's property)."""
    pattern = re.compile(rf"\bself\.{re.escape(attribute)}\s*(:[^=]*)?=[^=]")
    for klass in inspect.getmro(cls):
        if klass.__module__.split(".")[0] != "oml_fast":
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if pattern.search(source):
            return True
    return False


def differences(entry: dict[str, Any], ignore_extra: Iterable[str] = ()) -> list[str]:
    """What differs between OML's entry and ours (empty: the same). ``ignore_extra``: trailing parameters of
    ours left out of the comparison (deliberate additions)."""
    if entry["kind"] == "property":
        _, cls, problem = find_ours({**entry, "name": entry["name"].rsplit(".", 1)[0]})
        attribute = entry["name"].rsplit(".", 1)[1]
        if problem:
            return [problem]
        if inspect.getattr_static(cls, attribute, _MISSING) is _MISSING and not _assigned_on_instances(
            cls, attribute
        ):
            return [
                f"{our_module_name(entry['module'])}.{entry['name']} is neither a class attribute nor set on instances"
            ]
        return []
    owner, obj, problem = find_ours(entry)
    if problem:
        return [problem]
    if entry["kind"] == "constant" and "value" in entry:
        if _normalised(obj) != entry["value"]:
            return [f"value {obj!r}, OML's {entry['value']!r}"]
        return []
    if entry.get("parameters") is None:
        return []
    try:
        ours = our_parameters(entry, owner, obj)
    except (TypeError, ValueError) as error:
        return [f"no signature: {error}"]
    if ours is None:
        return ["not callable"]
    ignored = set(ignore_extra)
    return compare_parameters(entry["parameters"], [p for p in ours if p.name not in ignored])


def main(argv: list[str] | None = None) -> int:
    """Prints every difference by module; with ``--allow-lists``, only what the allow-lists of
    test_oml_names.py get wrong: differences they do not cover (the test fails) and entries they cover
    that no longer differ (stale lines to delete). Exit status 1 if there is any."""
    args = sys.argv[1:] if argv is None else argv
    if "--allow-lists" in args:
        from tests.compat import test_oml_names as listed

        uncovered, stale = [], []
        for entry in load_entries():
            found = differences(entry, ignore_extra=listed.DELIBERATE_EXTRA_PARAMETERS.get(key_of(entry), {}))
            allowed = listed._allowed(entry)
            if found and not allowed:
                uncovered.append(f"{key_of(entry)}: {'; '.join(found)}")
            elif allowed and not found:
                stale.append(f"{key_of(entry)}: {allowed}")
        print("differences no allow-list covers:", *uncovered or ["none"], sep="\n    ")
        print("allow-listed entries that now match:", *stale or ["none"], sep="\n    ")
        return 1 if uncovered or stale else 0
    by_module: dict[str, list[str]] = defaultdict(list)
    for entry in load_entries():
        for problem in differences(entry):
            by_module[entry["module"]].append(f"{entry['name']}: {problem}")
    for module, problems in sorted(by_module.items()):
        print(module)
        for problem in problems:
            print(f"    {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
