"""The stage registry: every family's templates as concrete stages, their order, and how one is run.

The CLI (`flywheel stage NAME`, which dvc.yaml calls) and the Prefect flow both go through run_stage,
which hands the stage function only the params keys the stage declares, so an undeclared read fails
instead of silently escaping DVC's bookkeeping. dvc.yaml is rendered from this registry
(flows/dvcfile.py), with each stage's code dependencies derived from its function's imports.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from common.paths import Paths
from flows.stages import deploy, evaluate, ingest, lab_seed, labels, package, report, simulate, train
from flows.stages.base import Shards, Stage, StageTemplate
from flows.stages.code_deps import code_deps

TEMPLATES: tuple[StageTemplate, ...] = (
    *simulate.TEMPLATES,
    *ingest.TEMPLATES,
    *labels.TEMPLATES[:1],  # label_seed
    *lab_seed.TEMPLATES,  # an imported lab batch as (part of) the seed set, when turn.seed_data says so
    *train.TEMPLATES,
    *labels.TEMPLATES[1:],  # mine, label_field, rare_event
    *evaluate.TEMPLATES,
    *package.TEMPLATES,
    *deploy.TEMPLATES,
    *report.TEMPLATES,
)

# Top-level keys every stage sees whatever it declares: load_params' record of the preset in use
# (run metadata, not a tunable; absent from params.yaml itself).
ALWAYS_VISIBLE = ("preset",)


def filter_params(params: dict, keys: tuple[str, ...]) -> dict:
    """The params restricted to the declared keys: "a.b" keeps just the leaf a.b (with its parent a)."""
    out: dict = {k: params[k] for k in ALWAYS_VISIBLE if k in params}
    for key in keys:
        src, dst = params, out
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(src, dict) or part not in src:
                missing = ".".join(parts[: i + 1])
                raise KeyError(f"params have no {missing!r} (declared by a stage as {key!r})")
            if i == len(parts) - 1:
                dst[part] = copy.deepcopy(src[part])
            else:
                src = src[part]
                dst = dst.setdefault(part, {})
    return out


def _bind(fn: Callable, item: str | None) -> Callable:
    return fn if item is None else (lambda *args: fn(*args, item))


def _deps(template: StageTemplate, item: str | None) -> Callable[[Paths], list[Path]]:
    code = code_deps(template.run)

    def deps(paths: Paths) -> list[Path]:
        data = template.deps(paths) if item is None else template.deps(paths, item)
        return [*data, *code]

    return deps


def build_registry() -> dict[str, Stage]:
    """Concrete stages (name or name@item), in template order; `execution_order` sorts them."""
    stages: dict[str, Stage] = {}
    for t in TEMPLATES:
        for item in t.items or (None,):
            name = t.name if item is None else f"{t.name}@{item}"
            shards = None
            if t.shards is not None:
                shards = Shards(*(_bind(f, item) for f in (t.shards.plan, t.shards.run, t.shards.merge)))
            stages[name] = Stage(
                name,
                _bind(t.run, item),
                _deps(t, item),
                _bind(t.outs, item),
                t.params,
                t.metrics,
                t.persist,
                shards,
            )
    return stages


REGISTRY: dict[str, Stage] = build_registry()


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def execution_order(paths: Paths) -> list[str]:
    """Stages sorted so each runs after every stage that writes one of its inputs (Kahn's algorithm)."""
    producers = {name: st.outs(paths) + st.metrics(paths) for name, st in REGISTRY.items()}
    needs = {
        name: {
            other
            for other, outs in producers.items()
            if other != name and any(_within(d, o) for d in st.deps(paths) for o in outs)
        }
        for name, st in REGISTRY.items()
    }
    order: list[str] = []
    while needs:
        ready = [n for n, deps in needs.items() if not deps - set(order)]
        if not ready:
            raise RuntimeError(f"stage dependency cycle among {sorted(needs)}")
        for n in ready:
            order.append(n)
            del needs[n]
    return order


TEMPLATE_BY_NAME: dict[str, StageTemplate] = {t.name: t for t in TEMPLATES}


def run_stage_function(template: str, params: dict, paths: Paths, item: str | None = None) -> dict:
    """A registered stage function on any item, on its declared params: how runs other than a turn (the
    experiment: batch field-3, model turn-2 under a per-strategy Paths) simulate, ingest, train, export and
    evaluate exactly as a turn does."""
    t = TEMPLATE_BY_NAME[template]
    if bool(t.items) != (item is not None):
        raise ValueError(f"stage {template!r} {'needs' if t.items else 'takes no'} item")
    view = filter_params(params, t.params)
    return t.run(view, paths) if item is None else t.run(view, paths, item)


def run_stage(name: str, params: dict, paths: Paths) -> dict:
    """Run one stage on the params it declares (and nothing else)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(REGISTRY)}")
    stage = REGISTRY[name]
    return stage.run(filter_params(params, stage.params), paths)


def _sharded(name: str) -> tuple[Stage, Shards]:
    stage = REGISTRY[name]
    if stage.shards is None:
        raise ValueError(f"stage {name!r} does not split into shards")
    return stage, stage.shards


def plan_shards(name: str, params: dict, paths: Paths) -> list:
    """The shards of a sharded stage (its inputs must exist), on the params it declares."""
    stage, shards = _sharded(name)
    return shards.plan(filter_params(params, stage.params), paths)


def run_shard(name: str, params: dict, paths: Paths, shard) -> object:
    """One shard of a sharded stage: its part for merge_shards."""
    stage, shards = _sharded(name)
    return shards.run(filter_params(params, stage.params), paths, shard)


def merge_shards(name: str, params: dict, paths: Paths, parts: list, started: float) -> dict:
    """A sharded stage's outputs from all its shards' parts (any order); returns the stage record."""
    stage, shards = _sharded(name)
    return shards.merge(filter_params(params, stage.params), paths, parts, started)
