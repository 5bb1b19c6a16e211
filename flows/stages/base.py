"""What every stage family shares: the Stage/StageTemplate types, the stage record, the batch and model names.

A stage is a plain function over (params, paths[, item]) returning its record. Each family module
(simulate.py, ingest.py, ...) defines its functions next to their StageTemplate; registry.py collects
them. No Prefect import here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.io import atomic_write_json, read_json
from common.paths import Paths

BATCHES = ("seed", "field", "eval")  # simulated and ingested
HELD_OUT = ("eval", "household")  # the two eval sets: the stress mix and household days (docs/evaluation.md)
SIMULATED = (*BATCHES, "household")  # household days are only evaluated, never ingested or trained on
MODELS = ("seed", "retrained")
TRAINING_DATA = {"seed": ("seed",), "retrained": ("seed", "field")}  # for a turn's own Paths
STAGE_RECORD = "_stage.json"


@dataclass(frozen=True)
class Shards:
    """How a stage's heavy work splits (docs/scale.md): `plan` lists the shards once its inputs exist,
    `run` computes one shard's part (in any process, in any order), `merge` writes the stage's outputs
    from all the parts, in shard order whatever order they come in, and returns the stage record.
    Shards and parts are picklable (they travel to and from task-runner workers). The stage's own `run`
    does the three in one process, so `flywheel stage` and a turn on any number of workers leave the
    same bytes."""

    plan: Callable[..., list]  # (params, paths[, item]) -> shards
    run: Callable[..., object]  # (params, paths, shard[, item]) -> part
    merge: Callable[..., dict]  # (params, paths, parts, started (time.perf_counter)[, item]) -> record


@dataclass(frozen=True)
class Stage:
    name: str  # DVC stage name, e.g. "simulate@seed"
    run: Callable[[dict, Paths], dict]
    deps: Callable[[Paths], list[Path]]  # data the stage reads, then the code and data files its code reads
    outs: Callable[[Paths], list[Path]]
    params: tuple[str, ...]  # the only params keys the stage function is handed (run_stage filters)
    metrics: Callable[[Paths], list[Path]] = field(default=lambda p: [])
    persist: bool = False  # outputs that carry state across turns (device folders)
    shards: Shards | None = None  # item-bound; None: the stage is one task


@dataclass(frozen=True)
class StageTemplate:
    """A stage, or a family of stages over `items` (DVC `foreach`: name@item).

    `deps` lists the data the stage reads; its code dependencies are derived from the modules `run`
    imports (flows/stages/code_deps.py), so they are not written here.
    """

    name: str
    run: Callable[..., dict]  # (params, paths[, item]) -> record
    deps: Callable[..., list[Path]]  # (paths[, item]) -> data paths
    outs: Callable[..., list[Path]]
    params: tuple[str, ...]
    items: tuple[str, ...] = ()
    metrics: Callable[[Paths], list[Path]] = field(default=lambda p: [])
    persist: bool = False
    shards: Shards | None = None  # `run` must be shards.plan, .run and .merge in one process


LAB_BATCH = "lab"  # an imported lab batch (flywheel lab import ... --out data/raw/lab): stage lab_seed
SEED_DATA = {"simulated": ("seed",), "lab": (LAB_BATCH,), "both": ("seed", LAB_BATCH)}  # turn.seed_data


def seed_data(params: dict) -> str:
    """params turn.seed_data: what the seed model learns from (simulated | lab | both)."""
    value = str(params["turn"]["seed_data"])
    if value not in SEED_DATA:
        raise ValueError(f"turn.seed_data {value!r} is not one of {', '.join(SEED_DATA)}")
    return value


def training_batches(paths: Paths, model: str, seed: str = "simulated") -> tuple[str, ...]:
    """The curated batches (with labels of the same name) a model learns from: the seed model its seed
    data (turn.seed_data: SEED_DATA), any other model also the run's field batches (a turn: "field"; an
    experiment's turn t: field-1..field-t). Stage deps use the default: they always list the lab batch's
    folders too (lab_seed_outputs), which lab_seed leaves empty when the turn does not use them."""
    seeds = SEED_DATA[seed]
    return seeds if model == "seed" else (*seeds, *paths.field_batches)


def lab_seed_outputs(paths: Paths) -> list[Path]:
    return [paths.curated(LAB_BATCH), paths.labels(LAB_BATCH)]


def record(out_dir: Path, name: str, started: float, summary: dict) -> dict:
    """Every stage leaves its timing and summary next to its outputs; the report collects them."""
    rec = {"stage": name, "seconds": round(time.perf_counter() - started, 3), "summary": summary}
    atomic_write_json(out_dir / STAGE_RECORD, rec)
    return rec


def by_batch(parts: list[dict]) -> dict[str, list]:
    """Shard parts tagged {"batch", "part"} grouped by batch (each group in the order given)."""
    groups: dict[str, list] = {}
    for p in parts:
        groups.setdefault(p["batch"], []).append(p["part"])
    return groups


def find_stage_records(paths: Paths) -> list[dict]:
    """The timing/summary records (_stage.json) this turn's stages left beside their first outputs, by
    stage name: the world's batch folders, the run's labels and models, this turn's evaluations, bundle
    and deployment. (Found on disk, so the report stage needs no registry: no import cycle.)"""
    patterns = [
        (paths.root / "raw", "*/" + STAGE_RECORD),
        (paths.curated_root, "*/" + STAGE_RECORD),
        (paths.run / "labels", "*/" + STAGE_RECORD),
        (paths.run / "models", "*/" + STAGE_RECORD),
        (paths.run / "models", "*/*/" + STAGE_RECORD),
        (paths.run / "evaluations" / paths.turn, "*/" + STAGE_RECORD),
        (paths.bundle_dir, STAGE_RECORD),
        (paths.deployment, STAGE_RECORD),
    ]
    records = [read_json(f) for root, pattern in patterns for f in sorted(root.glob(pattern))]
    return sorted(records, key=lambda r: str(r.get("stage")))
