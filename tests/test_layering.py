"""The layering of docs/DESIGN.md, read from the code's own imports: what each package may import, and
no import cycles between first-party modules (function-level imports included).

The rules are parsed from the "Layering (enforced)" table of docs/DESIGN.md, so the document and the
test cannot disagree. Every `import` and `from ... import` anywhere in a module counts (module level,
inside functions, under `if`/`try`): a function-level import is an import all the same.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DESIGN = REPO / "docs" / "DESIGN.md"
EVERYTHING = None  # a rule cell saying "everything": no restriction

# Imports allowed although the table forbids them, each with the reason; empty them as the code moves.
EXCEPTIONS: dict[str, set[str]] = {}
# Cycles allowed for now, as frozensets of the modules in one strongly connected component.
CYCLE_EXCEPTIONS: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Rule:
    first_party: frozenset[str] | None  # None: everything
    third_party: frozenset[str] | None


def _cell(text: str) -> frozenset[str] | None:
    text = text.strip()
    if text == "everything":
        return EVERYTHING
    if text in ("—", "-", ""):
        return frozenset()
    return frozenset(name.strip().strip("`") for name in text.split(","))


def layering_rules(design: Path = DESIGN) -> dict[str, Rule]:
    """{package: Rule} from the table under '### Layering (enforced)' in docs/DESIGN.md."""
    lines = design.read_text(encoding="utf-8").splitlines()
    start = lines.index("### Layering (enforced)")
    rules: dict[str, Rule] = {}
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`[a-z_]+`", cells[0]):
            continue
        rules[cells[0].strip("`")] = Rule(_cell(cells[1]), _cell(cells[2]))
    if not rules:
        raise ValueError(f"{design}: no layering table under '### Layering (enforced)'")
    return rules


RULES = layering_rules()
PACKAGES = sorted(RULES)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """{dotted module name: file} of every first-party module."""
    return {module_name(f): f for pkg in PACKAGES for f in sorted((REPO / pkg).rglob("*.py"))}


MODULES = all_modules()


def imported_names(path: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of everything a module imports, anywhere in it; relative imports resolved.

    `from a import b` yields `a.b` when that is a first-party module, else `a`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, node.lineno))
    return out


def is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names


def test_the_table_names_every_first_party_package() -> None:
    on_disk = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert on_disk == set(RULES), "docs/DESIGN.md's layering table and the packages on disk differ"


def layering_violations(package: str) -> list[str]:
    rule = RULES[package]
    found = []
    for mod, path in MODULES.items():
        if mod.split(".")[0] != package:
            continue
        for name, line in imported_names(path):
            top = name.split(".")[0]
            if top == package or is_stdlib(top) or top in EXCEPTIONS.get(mod, set()):
                continue
            allowed = rule.first_party if top in RULES else rule.third_party
            if allowed is not EVERYTHING and top not in allowed:
                kind = "first-party" if top in RULES else "third-party"
                found.append(f"{path.relative_to(REPO)}:{line} imports {name} ({kind} {top} not allowed)")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_the_layering_allows(package: str) -> None:
    assert layering_violations(package) == []


def test_the_exceptions_are_still_needed() -> None:
    """An exception the code no longer needs must go, so the list only ever shrinks."""
    for mod, tops in EXCEPTIONS.items():
        if mod not in MODULES:
            continue  # moved away: the exception is dead; flagged below
        used = {name.split(".")[0] for name, _ in imported_names(MODULES[mod])}
        assert tops <= used, f"{mod}: exception for {sorted(tops - used)} no longer needed"
    gone = set(EXCEPTIONS) - set(MODULES)
    assert not gone, f"exceptions for modules that are gone: {sorted(gone)}"


def import_graph() -> dict[str, set[str]]:
    """{module: first-party modules it imports} at module granularity, function-level imports included."""
    graph: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        targets = set()
        for name, _ in imported_names(path):
            while name and name not in MODULES:  # `import a.b.X` where X is a name, not a module
                name = name.rpartition(".")[0]
            if name and name != mod:
                targets.add(name)
        graph[mod] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycle_finder_finds_a_cycle_hidden_behind_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_first_party_imports_have_no_cycles() -> None:
    found = [sorted(c) for c in cycles(import_graph()) if c not in CYCLE_EXCEPTIONS]
    assert found == []


def test_the_rules_parse_from_a_table(tmp_path) -> None:
    doc = tmp_path / "DESIGN.md"
    doc.write_text(
        "### Layering (enforced)\n\n| package | first | third |\n|---|---|---|\n"
        "| `a` | — | numpy, yaml |\n| `b` | a | everything |\n\n## Next\n| `c` | x | y |\n"
    )
    rules = layering_rules(doc)
    assert rules == {
        "a": Rule(frozenset(), frozenset({"numpy", "yaml"})),
        "b": Rule(frozenset({"a"}), EVERYTHING),
    }
