"""The Prefect task runner a turn runs its stages on, chosen by configuration (params.yaml `scale:`).

`thread` (the default) runs stages on a bounded thread pool in the flow's process. `dask` runs them on
dask.distributed worker processes: a LocalCluster started for the flow run, or an existing scheduler
at `tcp://HOST:PORT` whose workers see the same project folder and data root. The turn's code is the
same either way; only the runner object differs (REFERENCE.md: process workers cost start-up seconds,
so a stage, or a shard of a heavy stage - one device's streams, 65,536 pool windows - and never a
capture, is the unit one task carries).
"""

from __future__ import annotations

RUNNERS = ("thread", "dask")


def runner_config(
    params: dict, runner: str | None = None, workers: int | None = None, address: str | None = None
) -> dict:
    """params.yaml `scale:` with the command line's choices on top; an address implies Dask."""
    scale = params.get("scale", {})
    kind = runner or ("dask" if address else scale.get("runner", "thread"))
    if kind not in RUNNERS:
        raise ValueError(f"unknown task runner {kind!r} (known: {', '.join(RUNNERS)})")
    if address and kind != "dask":
        raise ValueError(f"--dask-address {address} needs the dask runner, not {kind!r}")
    n = int(workers if workers is not None else scale.get("workers", 2))
    if n < 1:
        raise ValueError(f"workers must be at least 1, got {n}")
    dask = scale.get("dask", {})
    return {
        "runner": kind,
        "workers": n,
        "address": address or dask.get("address") or None,
        "threads_per_worker": int(dask.get("threads_per_worker", 1)),
        "memory_limit": dask.get("memory_limit", "auto"),
    }


def make_task_runner(config: dict):
    """A fresh Prefect task runner for `runner_config(...)`'s result."""
    if config["runner"] == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=config["workers"])
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # the optional extra
        raise RuntimeError("the dask runner needs the dask extra: pip install -e '.[dask]'") from exc
    if config["address"]:
        return DaskTaskRunner(address=config["address"])
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": config["workers"],
            "threads_per_worker": config["threads_per_worker"],
            "processes": True,
            "memory_limit": config["memory_limit"],
            "dashboard_address": None,  # no web server nobody asked for
        },
    )


def describe(config: dict) -> str:
    """One line for the console: which runner, how many workers, where."""
    if config["runner"] == "thread":
        return f"thread runner, {config['workers']} threads"
    if config["address"]:
        return f"dask runner on the scheduler at {config['address']}"
    return f"dask runner, LocalCluster of {config['workers']} worker processes"
