"""The turn's stages on a real Dask LocalCluster (two worker processes) leave the thread runner's bytes;
a sharded stage leaves the same bytes on one or two workers and in one process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STAGES = ["simulate@seed", "simulate@eval", "ingest@seed"]  # two workers busy at once, then ingest


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path; a stage's timing record (_stage.json) aside."""
    from flows.stages import STAGE_RECORD

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != STAGE_RECORD
    }


def test_runner_config_reads_params_and_the_command_line():
    from flows.runners import runner_config

    params = {"scale": {"runner": "thread", "workers": 2, "dask": {"address": None}}}
    assert runner_config(params)["runner"] == "thread"
    assert runner_config(params, "dask", 3) | {"memory_limit": None} == {
        "runner": "dask", "workers": 3, "address": None, "threads_per_worker": 1, "memory_limit": None,
    }  # fmt: skip
    assert runner_config(params, address="tcp://10.0.0.5:8786")["runner"] == "dask"
    with pytest.raises(ValueError, match="unknown task runner"):
        runner_config(params, "ray")
    with pytest.raises(ValueError, match="needs the dask runner"):
        runner_config(params, "thread", address="tcp://10.0.0.5:8786")
    with pytest.raises(ValueError, match="at least 1"):
        runner_config(params, workers=0)


def test_stages_on_a_dask_local_cluster_write_the_thread_runners_bytes(
    tmp_path, prefect_harness, project_root, monkeypatch
):
    pytest.importorskip("prefect_dask")
    from common.params import load_params
    from flows.runners import make_task_runner, runner_config
    from flows.turn import flywheel_turn

    monkeypatch.setenv("PYTHONPATH", str(project_root))  # worker processes import the project's packages
    params_file = str(project_root / "params.yaml")
    params = load_params(params_file, "tiny")
    out = {}
    for kind in ("thread", "dask"):
        runner = make_task_runner(runner_config(params, kind, workers=2))
        data = tmp_path / kind
        records = flywheel_turn.with_options(task_runner=runner)(
            params_file=params_file, preset="tiny", data_dir=str(data), use_dvc=False, stages=STAGES
        )
        assert sorted(records) == sorted(STAGES)
        out[kind] = _tree(data)
    assert len(out["thread"]) > 10
    assert out["dask"] == out["thread"]


SHARDED = ["simulate@eval", "simulate@household", "evaluate_baseline"]  # one shard per device of each set


def test_a_sharded_stage_leaves_the_same_bytes_on_one_or_two_workers_and_in_one_process(
    tmp_path, prefect_harness, project_root
):
    import shutil

    from prefect.task_runners import ThreadPoolTaskRunner

    from common.params import load_params
    from common.paths import Paths
    from flows.stages import plan_shards, run_stage
    from flows.turn import flywheel_turn

    params_file = str(project_root / "params.yaml")
    out = {}
    for workers in (1, 2):
        data = tmp_path / f"workers-{workers}"
        records = flywheel_turn.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))(
            params_file=params_file, preset="tiny", data_dir=str(data), use_dvc=False, stages=SHARDED
        )
        assert records["evaluate_baseline"]["stage"] == "evaluate_baseline"
        assert records["evaluate_baseline"]["seconds"] > 0
        out[workers] = _tree(data / "evaluations")
    params = load_params(params_file, "tiny")
    one = tmp_path / "one-process"
    shutil.copytree(tmp_path / "workers-1" / "raw", one / "raw")
    shutil.copytree(tmp_path / "workers-1" / "truth", one / "truth")
    paths = Paths.for_params(params, str(one))
    assert len(plan_shards("evaluate_baseline", params, paths)) >= 2  # eval and household devices
    run_stage("evaluate_baseline", params, paths)  # what `flywheel stage` (dvc repro) runs
    assert len(out[1]) >= 4
    assert out[1] == out[2] == _tree(one / "evaluations")
