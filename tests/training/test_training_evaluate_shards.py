"""Evaluation by shards (one device's streams each): merged in any order, on any number of workers, the
figures have the bytes of one pass over the whole batch."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import pytest
from config_testkit import cfar_section
from test_training_evaluate import DETECTOR, FRONTEND
from training_testkit import band_energy_model, write_fleet_batch

from common.io import dumps_json
from training.evaluate import (
    Shard,
    cfar_figures,
    compare_figures,
    compare_models,
    evaluate_cfar_rows,
    evaluate_detector_rows,
    list_shards,
    merge_shards,
    models_figures,
    run_cfar_shard,
    run_models_shard,
)

THRESHOLDS = [0.3, 0.9]
CFAR = cfar_section(hold_s=1.0)
CFAR_THRESHOLDS = [3.0, 60.0]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    write_fleet_batch(root / "raw", root / "truth")
    return root / "raw", root / "truth"


@pytest.fixture(scope="module")
def models(fleet):
    """Two band-energy models a dB apart (so float and int8 disagree on a few frames)."""
    from runtime.frontend import FrontendConfig, extract_features

    cfg = FrontendConfig.from_dict(FRONTEND)
    raw, _ = fleet
    moving = np.abs(np.linspace(-2.5, 2.5, 48)) >= 0.3
    walk = extract_features(np.load(raw / "iq" / "cap00.npy"), 2000.0, 40000.0, cfg)
    empty = extract_features(np.load(raw / "iq" / "cap05.npy"), 2000.0, 40000.0, cfg)
    loud = float(walk[int(6 / 0.032) : int(8 / 0.032)][:, moving].mean())
    quiet = float(empty[64:][:, moving].mean())
    return band_energy_model(32, 48, 2.5, quiet, loud), band_energy_model(32, 48, 2.5, quiet - 1.0, loud)


def _model_parts(fleet, models, shards):
    raw, truth = fleet
    pair = {"float": models[0], "int8": models[1]}
    return [run_models_shard(pair, FRONTEND, DETECTOR, raw, truth, s, THRESHOLDS) for s in shards]


def test_shards_are_the_devices_in_order_then_the_loose_captures(fleet):
    raw, _ = fleet
    assert list_shards(raw) == [Shard(0, "dev-0"), Shard(1, "dev-1"), Shard(2, "dev-2"), Shard(3, None)]


def test_each_shard_holds_its_devices_streams_and_shard_0_the_unread_lines(fleet, models):
    parts = _model_parts(fleet, models, list_shards(fleet[0]))
    assert {s.device_id for s in parts[1].streams} == {"dev-1"}
    assert [s["capture_id"] for s in parts[0].skipped] == ["line 6"]  # the malformed line, once
    assert [s["capture_id"] for s in parts[1].skipped] == ["missing"]
    assert len(parts[3].streams) == 1 and parts[3].streams[0].stream_id == "cap04"  # no start time


def test_merged_shards_in_reverse_order_give_the_whole_batch_bytes(fleet, models):
    raw, truth = fleet
    whole = compare_models(*models, FRONTEND, DETECTOR, raw, truth, det_thresholds=THRESHOLDS)
    parts = _model_parts(fleet, models, list_shards(raw))[::-1]
    parts = [pickle.loads(pickle.dumps(p)) for p in parts]  # parts travel between processes
    merged = compare_figures(merge_shards(parts), DETECTOR, THRESHOLDS)
    assert 0.9 < whole["decision_agreement"] < 1.0  # the two models differ: the gate is not trivial
    assert dumps_json(merged) == dumps_json(whole)

    alone, rows = evaluate_detector_rows(models[1], FRONTEND, DETECTOR, raw, truth)
    int8 = [
        run_models_shard({"int8": models[1]}, FRONTEND, DETECTOR, raw, truth, s) for s in list_shards(raw)
    ]
    figures = models_figures(merge_shards(int8[::-1]), ["int8"], DETECTOR)["int8"]
    assert dumps_json([figures["metrics"], figures["rows"]]) == dumps_json([alone, rows])


def test_shards_on_one_or_two_workers_merge_to_the_same_bytes(fleet, models):
    raw, truth = fleet
    shards = list_shards(raw)
    out = []
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(run_cfar_shard, raw, truth, FRONTEND, CFAR, s, CFAR_THRESHOLDS) for s in shards
            ]
            parts = [f.result() for f in as_completed(futures)]  # completion order
        out.append(dumps_json(cfar_figures(merge_shards(parts), FRONTEND, CFAR, CFAR_THRESHOLDS)))
    whole = evaluate_cfar_rows(raw, truth, FRONTEND, CFAR, det_thresholds_db=CFAR_THRESHOLDS)
    assert out[0] == out[1] == dumps_json(whole)


def test_a_shard_merged_twice_is_refused(fleet):
    raw, truth = fleet
    part = run_cfar_shard(raw, truth, FRONTEND, CFAR, list_shards(raw)[0])
    with pytest.raises(ValueError, match="twice"):
        merge_shards([part, part])


def test_a_batch_of_loose_captures_only_is_one_shard(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "captures.jsonl").write_text("{not json\n")
    assert list_shards(tmp_path / "raw") == [Shard(0, None)]
