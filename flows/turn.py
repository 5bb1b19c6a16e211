"""The Prefect flow for one whole flywheel turn: every registry stage as a task, in dependency order.

With DVC bookkeeping on (the default for params.yaml as it is), a stage that `dvc status` calls up to
date is skipped, and a stage that ran is `dvc commit`ted, so a scheduled turn leaves exactly what
`dvc repro` leaves. With a preset or another data folder the turn runs without DVC (a rehearsal).
The embedded Prefect server starts once, for this one flow run. Stages run on the flow's task runner:
a bounded thread pool by default, Dask worker processes when `flows/runners.py` says so (the CLI's
`--runner dask`); each process keeps its own DVC repo handle, and a file lock keeps their books in turn.
A stage that splits into shards (evaluate, evaluate_baseline, mine) runs as a plan, one task per shard
and a merge, so its heavy work spreads over the workers; the merge writes the same bytes either way.
"""

from __future__ import annotations

import fcntl
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from rich.console import Console

from common.params import load_params
from common.paths import Paths
from flows.dvcfile import dvc_name
from flows.stages import REGISTRY, execution_order, merge_shards, plan_shards, run_shard, run_stage

_dvc_lock = threading.Lock()  # the DVC repo object is not thread-safe
_bridges: dict[str, object] = {}  # project root -> this process's DvcBridge (flow process or Dask worker)
_console = Console(stderr=True)


def _clear_outputs(name: str, paths: Paths) -> None:
    """Like `dvc repro`: a stage starts from empty outputs (persistent ones excepted)."""
    stage = REGISTRY[name]
    if stage.persist:
        return
    for out in stage.outs(paths) + stage.metrics(paths):
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()


@contextmanager
def _dvc_books(root: str) -> Iterator:
    """This process's DVC bridge for `root`, held by one thread and one process at a time."""
    lock_file = Path(root) / ".dvc" / "tmp" / "flywheel-turn.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with _dvc_lock, open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
        bridge = _bridges.get(root)
        if bridge is None:
            from flows.dvc_bridge import DvcBridge

            bridge = _bridges[root] = DvcBridge(root)
        yield bridge


def _close_bridges() -> None:
    with _dvc_lock:
        while _bridges:
            _bridges.popitem()[1].close()


# DVC is the cache here (skip when dvc.lock is current); Prefect result caching would duplicate it.
@task(name="stage", task_run_name="{name}", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def run_stage_task(name: str, params: dict, data_dir: str, dvc_root: str | None = None) -> dict:
    # Dask pickles this function by value (the module attribute is the Task): it must reach module
    # state (locks, the console) only through functions imported by reference, like run_stage_here.
    return run_stage_here(name, params, data_dir, dvc_root)


def run_stage_here(name: str, params: dict, data_dir: str, dvc_root: str | None = None) -> dict:
    """One stage in this process (the flow's, or a Dask worker's), keeping DVC's books when asked."""
    paths = Paths.for_params(params, data_dir)
    skipped = _start_stage(name, paths, dvc_root)
    if skipped:
        return skipped
    started = time.perf_counter()
    record = run_stage(name, params, paths)  # the stage sees only the params it declares
    _finish_stage(name, dvc_root, time.perf_counter() - started)
    return record


def _start_stage(name: str, paths: Paths, dvc_root: str | None) -> dict | None:
    """The skipped record of a stage dvc.lock calls current; else None, its outputs cleared."""
    if dvc_root is not None:
        with _dvc_books(dvc_root) as bridge:
            current = bridge.is_current(dvc_name(name))
        if current:
            get_run_logger().info("%s: up to date (dvc.lock), skipped", name)
            _console.print(f"[dim]= {name}: up to date, skipped[/dim]")
            return {"stage": name, "skipped": True, "seconds": 0.0}
    _clear_outputs(name, paths)
    _console.print(f"[cyan]▶ {name}[/cyan]")
    return None


def _finish_stage(name: str, dvc_root: str | None, elapsed: float) -> None:
    if dvc_root is not None:
        with _dvc_books(dvc_root) as bridge:
            bridge.commit(dvc_name(name))
    get_run_logger().info("%s: done in %.1f s", name, elapsed)
    _console.print(f"[green]✓ {name}[/green] {elapsed:.1f} s")


# A sharded stage (flows/stages Shards) is three kinds of task: its plan (DVC's check, cleared outputs,
# the shard list), one task per shard, and the merge that writes its outputs and keeps DVC's books.
# The flow submits the shard tasks itself once the plan is known: a task that submitted them and waited
# would hold a worker the shards need (a bounded thread pool deadlocks).
@task(name="plan", task_run_name="{name}: plan", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def plan_stage_task(name: str, params: dict, data_dir: str, dvc_root: str | None = None) -> dict:
    return plan_stage_here(name, params, data_dir, dvc_root)


@task(name="shard", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def shard_task(name: str, params: dict, data_dir: str, shard) -> object:
    return run_shard(name, params, Paths.for_params(params, data_dir), shard)


@task(name="merge", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def merge_stage_task(
    name: str, params: dict, data_dir: str, dvc_root: str | None, wall_started: float, parts: list
) -> dict:
    return merge_stage_here(name, params, data_dir, dvc_root, wall_started, parts)


def plan_stage_here(name: str, params: dict, data_dir: str, dvc_root: str | None = None) -> dict:
    """{"shards": [...], "wall_started": epoch s} of a sharded stage to run, or its skipped record."""
    paths = Paths.for_params(params, data_dir)
    wall_started = time.time()  # the merge may run in another process: wall clock, not perf_counter
    return _start_stage(name, paths, dvc_root) or {
        "shards": plan_shards(name, params, paths),
        "wall_started": wall_started,
    }


def merge_stage_here(
    name: str, params: dict, data_dir: str, dvc_root: str | None, wall_started: float, parts: list
) -> dict:
    """A sharded stage's outputs from its parts (merged in shard order) and its books; its record."""
    started = time.perf_counter() - (time.time() - wall_started)  # the plan's start on this clock
    record = merge_shards(name, params, Paths.for_params(params, data_dir), parts, started)
    _finish_stage(name, dvc_root, time.perf_counter() - started)
    return record


@flow(name="flywheel-turn", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def flywheel_turn(
    params_file: str = "params.yaml",
    preset: str | None = None,
    data_dir: str = "data",
    use_dvc: bool = True,
    seed_data: str | None = None,
    stages: list[str] | None = None,
) -> dict:
    """One turn: simulate → ingest → label → train → mine → label → retrain → export/int8 → evaluate →
    package → deploy → report. seed_data overrides params turn.seed_data (flows/stages/lab_seed.py);
    `stages` runs only those (their inputs must exist), in the same order."""
    params = load_params(params_file, preset)
    if seed_data is not None:
        params["turn"]["seed_data"] = seed_data
    paths = Paths.for_params(params, data_dir)
    order = execution_order(paths)
    unknown = sorted(set(stages or ()) - set(order))
    if unknown:
        raise ValueError(f"unknown stages {unknown}; stages: {', '.join(order)}")
    dvc_root = str(Path(params_file).resolve().parent) if use_dvc else None
    selected = order if stages is None else [n for n in order if n in stages]
    futures: dict = {}  # stage -> the future whose result is its record
    planning: dict = {}  # sharded stage -> its plan's future, until its shards are submitted
    todo = list(selected)
    try:
        while todo or planning:
            todo = _submit_ready(todo, selected, futures, planning, paths, (params, data_dir, dvc_root))
            if planning:
                done = next(as_completed(list(planning.values())))
                name = next(n for n, f in planning.items() if f is done)
                del planning[name]
                futures[name] = _fan_out(name, done, params, data_dir, dvc_root)
            elif todo:
                raise RuntimeError(f"stages {todo} wait on stages that never start")
        records = {name: futures[name].result() for name in selected}
        if dvc_root is not None:
            with _dvc_books(dvc_root) as bridge:
                if bridge.push():
                    get_run_logger().info("pushed outputs to the DVC remote")
    finally:
        _close_bridges()
    _publish_artifacts(paths, records)
    return records


def _submit_ready(
    todo: list[str], selected: list[str], futures: dict, planning: dict, paths: Paths, args: tuple
) -> list[str]:
    """Submit every stage (in order) whose upstream stages all have their record's future: a plain stage
    as one task, a sharded one as its plan. Returns the stages still waiting (on a plan)."""
    waiting = []
    for name in todo:
        ups = [u for u in _upstream(name, paths) if u in selected]
        if any(u not in futures for u in ups):
            waiting.append(name)
            continue
        upstream = [futures[u] for u in ups]
        if REGISTRY[name].shards is None:
            futures[name] = run_stage_task.with_options(task_run_name=name).submit(
                name, *args, wait_for=upstream
            )
        else:
            planning[name] = plan_stage_task.submit(name, *args, wait_for=upstream)
    return waiting


def _fan_out(name: str, plan, params: dict, data_dir: str, dvc_root: str | None):
    """A finished plan's shard tasks and merge (the merge's future), or the plan's own future when the
    stage was skipped or its plan failed (stages after it then see that)."""
    plan.wait()  # its final state, not the API's view of it (which may lag)
    if not plan.state.is_completed() or plan.result().get("skipped"):
        return plan
    shards, wall_started = plan.result()["shards"], plan.result()["wall_started"]
    parts = [
        shard_task.with_options(task_run_name=f"{name} [{k + 1}/{len(shards)}]").submit(
            name, params, data_dir, shard
        )
        for k, shard in enumerate(shards)
    ]
    return merge_stage_task.with_options(task_run_name=name).submit(
        name, params, data_dir, dvc_root, wall_started, parts
    )


def _upstream(name: str, paths: Paths) -> list[str]:
    deps = REGISTRY[name].deps(paths)
    return [
        other
        for other, st in REGISTRY.items()
        if other != name
        and any(d == o or o in d.parents for d in deps for o in st.outs(paths) + st.metrics(paths))
    ]


def _publish_artifacts(paths: Paths, records: dict) -> None:
    """The turn page linked from a markdown artifact (with report.md), and its tables as table artifacts."""
    from common.io import read_json
    from flows.report import artifact_tables

    rows = [
        {"stage": n, "seconds": r.get("seconds", 0.0), "skipped": bool(r.get("skipped"))}
        for n, r in records.items()
    ]
    create_table_artifact(key="turn-stage-timings", table=rows, description="Stage timings of this turn")
    report_json = paths.report_dir / "report.json"
    if report_json.exists():
        for key, (description, table) in artifact_tables(read_json(report_json)).items():
            create_table_artifact(key=key, table=table, description=description)
    report_md = paths.report_dir / "report.md"
    if report_md.exists():
        create_markdown_artifact(
            key="turn-report", markdown=turn_markdown(paths, report_md.read_text()), description="Turn report"
        )


def turn_markdown(paths: Paths, report_md: str) -> str:
    """report.md headed by a link to the turn page (index.html), for the Prefect UI."""
    from flows.report import PAGE_NAME

    page = (paths.report_dir / PAGE_NAME).resolve()
    link = f"**[Open the turn page]({page.as_uri()})** (`{page}`; `flywheel report open {paths.turn}`)\n\n"
    return (link if page.exists() else "") + report_md
