"""A stage's code dependencies, derived from what its function imports (so dvc.yaml cannot drift).

Starting from the stage function, collect the first-party modules it imports (its own body, the
module-local helpers it calls, and its module's top-level imports), then walk every first-party
module's imports transitively - module-level and function-level alike, since stages and packages import
lazily. The result is a sorted list of files (not folders), so a change to training/metrics.py makes
exactly the stages whose code reaches it out of date. Data files that code reads beside itself are
listed in DATA_FILES, keyed by the module that reads them, and follow that module into the deps.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("bench", "common", "deploy", "fleet", "flows", "ingest", "mining", "runtime", "training")

# module file -> data files (or folders) it reads at run time, relative to the repository root
DATA_FILES: dict[str, tuple[str, ...]] = {
    "fleet/config.py": ("fleet/profiles.yaml",),
    "runtime/mbdp.py": ("runtime/mbdp_presets.json",),
    "training/budget.py": ("training/dsp_profiles.yaml",),
    "deploy/firmware_c.py": ("deploy/c_templates",),
}

# Modules included but not followed: the registry imports every stage family to wire them together, and
# the report stage imports it only to find the records the stages left (data, declared as such).
NOT_FOLLOWED = frozenset({Path("flows/stages/__init__.py"), Path("flows/stages/registry.py")})


def _module_file(module: str) -> Path | None:
    """Repository-relative file of a first-party dotted module name, or None (third party / missing)."""
    if module.split(".")[0] not in FIRST_PARTY:
        return None
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate
    return None


def _imported_modules(nodes: list[ast.AST], package: str) -> set[str]:
    """Dotted names imported anywhere inside the nodes; `from a import b` yields a.b when b is a module."""
    names: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                names.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                if sub.level:  # relative import: resolve against the importing package
                    parts = package.split(".")[: len(package.split(".")) - sub.level + 1]
                    base = ".".join([*parts, sub.module] if sub.module else parts)
                else:
                    base = sub.module or ""
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in sub.names)
    return names


@cache
def _parse(rel: Path) -> ast.Module:
    return ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=str(rel))


def _package_of(rel: Path) -> str:
    return ".".join(rel.parts[:-1])  # a/b.py and a/__init__.py both live in package a


@cache
def _module_imports(rel: Path) -> frozenset[Path]:
    """First-party files imported anywhere in one module."""
    names = _imported_modules([_parse(rel)], _package_of(rel))
    return frozenset(f for f in map(_module_file, names) if f is not None and f != rel)


def _function_imports(fn: Callable) -> set[str]:
    """Modules imported by fn, by the module-local functions it calls (transitively), and at module level."""
    module = inspect.getmodule(fn)
    rel = Path(inspect.getfile(fn)).resolve().relative_to(ROOT)
    tree = _parse(rel)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    seen, todo = set(), [fn.__name__]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        calls = [c for c in ast.walk(defs[name]) if isinstance(c, ast.Call)]
        todo += [c.func.id for c in calls if isinstance(c.func, ast.Name)]
    return _imported_modules(top_level + [defs[n] for n in seen], module.__package__ or "")


def code_deps(fn: Callable) -> list[Path]:
    """Sorted repository-relative code files (and the data files they read) that a stage function runs."""
    own = Path(inspect.getfile(fn)).resolve().relative_to(ROOT)
    files = {own}
    todo = [f for f in map(_module_file, _function_imports(fn)) if f is not None]
    while todo:
        rel = todo.pop()
        if rel in files:
            continue
        files.add(rel)
        if rel not in NOT_FOLLOWED:
            todo += [f for f in _module_imports(rel) if f not in files]
    data = {Path(d) for f in files for d in DATA_FILES.get(f.as_posix(), ())}
    return sorted(files | data)
