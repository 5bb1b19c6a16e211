"""Lab recordings as the seed set: turn.seed_data picks the batches, the lab_seed stage ingests and labels."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest

from common.params import load_params
from common.paths import Paths
from fleet.lab_recording import LabTake, labels_csv, render_take, wav_bytes
from flows.stages import REGISTRY
from flows.stages.base import seed_data, training_batches
from flows.stages.lab_seed import lab_seed
from ingest.config import LabImportConfig
from ingest.lab_import import import_lab

REPO = Path(__file__).resolve().parents[2]


def _params(seed_data: str) -> dict:
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["turn"]["seed_data"] = seed_data
    return params


def test_training_batches_follow_seed_data() -> None:
    paths = Paths(Path("data"), "t")
    assert training_batches(paths, "seed", seed_data(_params("simulated"))) == ("seed",)
    assert training_batches(paths, "seed", seed_data(_params("lab"))) == ("lab",)
    assert training_batches(paths, "retrained", seed_data(_params("both"))) == ("seed", "lab", "field")
    with pytest.raises(ValueError, match="seed_data"):
        seed_data(_params("recordings"))
    train = REGISTRY["train@seed"].deps(Paths(Path("data"), "t"))
    assert Path("data/curated/lab") in train and Path("data/labels/lab") in train


def test_lab_seed_off_on_and_missing(tmp_path) -> None:
    paths = Paths(tmp_path / "data", "turn-x")
    assert lab_seed(_params("simulated"), paths)["summary"]["lab_batch"] == "off"
    assert paths.curated("lab").is_dir() and paths.labels("lab").is_dir()
    with pytest.raises(FileNotFoundError, match="flywheel lab import"):
        lab_seed(_params("lab"), paths)
    takes = [("m/a.wav", LabTake(duration_s=2.5, onset_s=0.3, motion_s=1.5, seed=1)),
             ("e/b.wav", LabTake(duration_s=2.0, onset_s=None, seed=2))]  # fmt: skip
    src = tmp_path / "src"
    for name, take in takes:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(wav_bytes(render_take(take), take.fs_hz))
    (tmp_path / "labels.csv").write_text(labels_csv(takes))
    params = _params("lab")
    import_lab(
        src,
        paths.raw("lab"),
        paths.truth("lab"),
        LabImportConfig.from_params(params),
        labels_csv=tmp_path / "labels.csv",
    )
    record = lab_seed(params, paths)
    assert record["summary"]["ingested"] == 2
    labels = pl.read_parquet(paths.labels("lab") / "labels.parquet")
    assert labels.height == record["summary"]["labels"] > 0
    assert set(labels["source"]) == {"lab"} and {0, 2} <= set(labels["label"].to_list())
