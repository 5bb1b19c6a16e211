"""`flywheel labels export/import` through typer's CliRunner: the files written, the label table read back,
and refusals (bad export, missing inputs, picks outside the batch, confidence out of range)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mining"))
from label_studio_testkit import LS_PARAMS, completed_export, curated_batch, picks_for

from flows.cli import app
from mining.labels import LABEL_SCHEMA

runner = CliRunner()


def _run(*args) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.fixture
def batch(tmp_path) -> tuple[Path, Path, Path]:
    """(curated batch, picks.parquet of 5 windows, params.yaml)."""
    curated = curated_batch(tmp_path)
    picks = tmp_path / "picks.parquet"
    picks_for(curated, 5).write_parquet(picks)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(LS_PARAMS))
    return curated, picks, params


def test_export_then_import_round_trip(tmp_path, batch):
    curated, picks, params = batch
    out = tmp_path / "ls"
    code, text = _run(
        "labels", "export", "--picks", picks, "--curated", curated, "--out", out, "--params", params
    )
    assert code == 0, text
    assert "wrote 5 tasks" in text
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["data"]["window_id"] for t in tasks] == pl.read_parquet(picks)["window_id"].to_list()
    assert len(list((out / "images").glob("*.png"))) == 5 and (out / "label_config.xml").exists()

    export = tmp_path / "export.json"
    export.write_text(json.dumps(completed_export(tasks)))
    labels_path = tmp_path / "labels" / "labels.parquet"
    code, text = _run("labels", "import", export, "--out", labels_path, "--confidence", "0.9")
    assert code == 0, text
    assert "imported 3 labels" in text
    labels = pl.read_parquet(labels_path)
    assert labels.schema == pl.Schema(LABEL_SCHEMA)
    assert labels["label"].to_list() == [2, 1, 0]  # major; none corrected to minor; none
    assert set(labels["source"]) == {"label_studio"} and set(labels["confidence"]) == {0.9}
    assert labels["window_id"].to_list() == [tasks[i]["data"]["window_id"] for i in (0, 1, 4)]
    assert set(labels["batch_id"]) == {"ls"}


def test_import_refuses_a_malformed_export_naming_file_and_field(tmp_path, batch):
    curated, picks, params = batch
    _run(
        "labels",
        "export",
        "--picks",
        picks,
        "--curated",
        curated,
        "--out",
        tmp_path / "ls",
        "--params",
        params,
    )
    doc = completed_export(json.loads((tmp_path / "ls" / "tasks.json").read_text()))
    doc[1]["annotations"][1]["result"][0]["from_name"] = "sentiment"
    export = tmp_path / "export.json"
    export.write_text(json.dumps(doc))
    out = tmp_path / "labels.parquet"
    code, text = _run("labels", "import", export, "--out", out)
    assert code == 2
    assert str(export) in text and "[1].annotations[1].result[0].from_name" in text and "'sentiment'" in text
    assert not out.exists()

    code, text = _run("labels", "import", export, "--out", out, "--confidence", "1.5")
    assert code != 0 and not out.exists()
    code, text = _run("labels", "import", tmp_path / "nope.json", "--out", out)
    assert code == 2 and "no such export file" in text


def test_export_refusals(tmp_path, batch):
    curated, picks, params = batch
    out = tmp_path / "ls"
    code, text = _run(
        "labels",
        "export",
        "--picks",
        tmp_path / "none.parquet",
        "--curated",
        curated,
        "--out",
        out,
        "--params",
        params,
    )
    assert code == 2 and "no such picks table" in text
    code, text = _run(
        "labels",
        "export",
        "--picks",
        picks,
        "--curated",
        tmp_path / "nowhere",
        "--out",
        out,
        "--params",
        params,
    )
    assert code == 2 and "no such curated batch" in text
    ghost = tmp_path / "ghost.parquet"
    pl.DataFrame({"window_id": ["other-batch:31"]}).write_parquet(ghost)
    code, text = _run(
        "labels", "export", "--picks", ghost, "--curated", curated, "--out", out, "--params", params
    )
    assert code == 2 and "picks not in the batch" in text and "other-batch:31" in text
    no_ids = tmp_path / "no_ids.parquet"
    pl.DataFrame({"id": [1]}).write_parquet(no_ids)
    code, text = _run(
        "labels", "export", "--picks", no_ids, "--curated", curated, "--out", out, "--params", params
    )
    assert code == 2 and "no window_id column" in text
    assert not (out / "tasks.json").exists()
