"""`flywheel experiment`: its config and seeds, the report on fabricated rows, and one tiny end-to-end run
(equal label budgets per strategy and turn, seed and CFAR rows, the same seed giving the same results)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.experiment import (
    count_steps,
    evaluation_row,
    experiment_config,
    field_spec,
    run_experiment,
    run_params,
)
from bench.experiment_report import check_targets, markdown_table, summarise, write_report
from common.params import load_params

LENIENT_TARGETS = {  # every target at 1.0: the tests below check the figures, not the targets
    k: 1.0
    for k in ("fa_reduction_vs_seed", "fa_reduction_vs_random", "entry_recall", "max_false_absence_ratio")
}
METRICS = ("false_triggers_per_empty_hour", "entry_recall", "false_absences_per_occupied_hour")


@pytest.fixture(scope="module")
def params(project_root):
    return load_params(project_root / "params.yaml")


def test_experiment_config_merges_quick_overrides_without_touching_params(params):
    before = copy.deepcopy(params)
    full, quick = experiment_config(params), experiment_config(params, quick=True)
    q = params["experiment"]["quick"]
    assert "quick" not in full and "quick" not in quick
    assert full["budget"] == params["experiment"]["budget"] and quick["budget"] == q["budget"]
    assert quick["batches"]["field"] == q["batches"]["field"]
    assert quick["targets"] == full["targets"]  # not overridden: kept from the full config
    assert quick["strategies"] == full["strategies"]
    assert params == before


def test_count_steps_counts_every_progress_report():
    ex = {"strategies": ["flywheel", "random", "uncertainty"], "rare_event": {"enabled": True}}
    # 1 (seed + eval batches) + 3 field batches + 1 CFAR + 2 seeds × (seed model + 3 × 3 turns) + 1 rare
    assert count_steps(ex, turns=3, seeds=2) == 1 + 3 + 1 + 2 * (1 + 9) + 1
    ex["rare_event"]["enabled"] = False
    assert count_steps(ex, turns=1, seeds=1) == 1 + 1 + 1 + (1 + 3)
    # the trigger is trained on the flywheel's labels: without that strategy it is never measured
    assert count_steps({"strategies": ["random"], "rare_event": {"enabled": True}}, 2, 1) == 1 + 2 + 1 + 3
    # every-window ceiling: one more training per seed
    ex = {"strategies": ["random"], "rare_event": {"enabled": False}, "ceiling": True}
    assert count_steps(ex, 2, 3) == 1 + 2 + 1 + 3 * (1 + 2 + 1)


def test_run_params_gives_each_experiment_seed_its_own_seeds(params):
    ex = experiment_config(params, quick=True)
    before = copy.deepcopy(params)
    a, b = run_params(params, ex, 0), run_params(params, ex, 1)
    assert params == before
    assert a["training"]["epochs"] == ex["epochs"] and a["training"]["progress_bar"] is False
    seeds_a = (a["training"]["seed"], a["mining"]["seed"], a["labeling"]["seed"])
    seeds_b = (b["training"]["seed"], b["mining"]["seed"], b["labeling"]["seed"])
    assert len(set(seeds_a + seeds_b)) == 6  # no two random streams share a seed
    assert seeds_a == (ex["seed"], ex["seed"] + 1, ex["seed"] + 2)
    assert [y - x for x, y in zip(seeds_a, seeds_b, strict=True)] == [1000, 1000, 1000]
    assert run_params(params, ex, 1) == b  # a function of the seed index only
    assert a["frontend"] == params["frontend"] and a["detector"] == params["detector"]


def test_field_spec_is_a_new_day_on_the_same_devices(params):
    ex = experiment_config(params)
    base = ex["batches"]["field"]
    specs = [field_spec(ex, t) for t in (1, 2, 3)]
    assert [s["seed"] for s in specs] == [base["seed"] + 1, base["seed"] + 2, base["seed"] + 3]
    assert all(s["devices"] == base["devices"] and s["hours"] == base["hours"] for s in specs)
    assert ex["batches"]["field"]["seed"] == base["seed"]  # not mutated


def test_evaluation_row_turns_event_counts_into_rates():
    metrics = {
        "false_triggers_per_empty_hour": 2.5,
        "entry_recall": 1.0,
        "false_absences_per_occupied_hour": 0.5,
        "entry_latency_p95_s": 0.7,
        "false_triggers": 5,
        "false_triggers_strict": 2,
        "false_triggers_lenient": 3,
        "empty_hours": 2.0,
        "empty_present_fraction": 0.25,
        "false_triggers_by_type": {
            "ceiling_fan": {"count": 1, "hours": 0.5, "per_hour": 6.0, "false_triggers": 3},
            "music": {"count": 0, "hours": 0.0, "per_hour": None, "false_triggers": 0},  # not seen
        },
        "det_curve": [{"threshold": 0.8, "false_triggers_per_empty_hour": 2.5, "missed_entry_rate": 0.25}],
    }
    row = evaluation_row(metrics)
    assert row == {
        "false_triggers_per_empty_hour": 2.5,
        "entry_recall": 1.0,
        "false_absences_per_occupied_hour": 0.5,
        "entry_latency_p95_s": 0.7,
        "false_triggers_per_empty_hour_strict": 1.0,
        "false_triggers_per_empty_hour_lenient": 1.5,
        "empty_present_fraction": 0.25,
        "degenerate": None,
        "false_triggers": 5,
        "empty_hours": 2.0,
        "by_event_type": {"ceiling_fan": 6.0, "music": None},
        "curve": [
            {
                "threshold": 0.8,
                "false_triggers_per_empty_hour": 2.5,
                "missed_entry_rate": 0.25,
                "entry_recall": 0.75,
            }
        ],
    }


def test_run_experiment_refuses_bad_arguments_before_simulating(params, tmp_path):
    with pytest.raises(ValueError, match="turns and seeds must be >= 1"):
        run_experiment(params, tmp_path, turns=0)
    p = copy.deepcopy(params)
    p["experiment"]["strategies"] = ["flywheel", "oracle_peeking"]
    with pytest.raises(ValueError, match=r"unknown \['oracle_peeking'\]"):
        run_experiment(p, tmp_path, turns=1)
    assert not any(tmp_path.iterdir())


def test_score_windows_follow_the_given_order_and_labeled_embeddings_sample_is_seeded(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from training_testkit import band_energy_model

    from bench.experiment import labeled_embeddings
    from mining.scoring import score_windows
    from training.synthetic import make_synthetic_batch

    curated, labels = make_synthetic_batch(tmp_path, n_captures=3, frames_per_capture=64, context_frames=8)
    model = tmp_path / "model.onnx"
    model.write_bytes(band_energy_model(8, 48, 2.5, -60.0, -35.0))  # embedding: mean over frames [N, V]
    table = pl.read_parquet(curated / "windows.parquet")
    ids = table["window_id"].to_list()
    order = np.random.default_rng(0).permutation(len(ids))
    p_present, emb = score_windows(model, curated, pl.Series([ids[i] for i in order]), 8)
    frames = np.load(curated / "frames.npy", allow_pickle=False)
    end = table["end_row"].to_numpy()[order]
    expected = np.stack([frames[e - 7 : e + 1].mean(axis=0) for e in end])
    np.testing.assert_allclose(emb, expected, rtol=1e-5, atol=1e-4)  # row k is window ids[order[k]]
    assert p_present.shape == (len(ids),) and np.all((p_present >= 0) & (p_present <= 1))
    with pytest.raises(ValueError, match="1 labelled windows are not in the batch"):
        score_windows(model, curated, pl.Series(["ghost:7", ids[0]]), 8)

    sets = [(curated, labels), (curated, labels)]
    a = labeled_embeddings(model, sets, 8, limit=20, seed=4)
    assert a.shape == (20, 48)  # at most limit // len(sets) per label set
    assert np.array_equal(a, labeled_embeddings(model, sets, 8, limit=20, seed=4))
    assert not np.array_equal(a, labeled_embeddings(model, sets, 8, limit=20, seed=5))
    assert labeled_embeddings(model, sets[:1], 8, limit=10_000, seed=4).shape == (len(ids), 48)


# --- report on fabricated rows -------------------------------------------------------------------


def _row(fa, recall, absences, by_type=None, **extra):
    return {
        "false_triggers_per_empty_hour": fa,
        "entry_recall": recall,
        "false_absences_per_occupied_hour": absences,
        "by_event_type": by_type or {},
        **extra,
    }


def fabricated(flywheel_last_fa=(0.4, 0.6), random_last_fa=(2.0, 2.0), minor=0.85):
    ex = {
        "strategies": ["flywheel", "random"],
        "budget": 10,
        "targets": {
            "fa_reduction_vs_seed": 10.0,
            "fa_reduction_vs_random": 3.0,
            "entry_recall": 0.99,
            "max_false_absence_ratio": 1.0,
        },
        "quick": {"budget": 1},
    }
    seed_rows = [_row(10.0, 0.99, 0.9, {"ceiling_fan": 8.0}, seed=0), _row(12.0, 1.0, 0.92, seed=1)]
    rows = []
    for s in (0, 1):
        rows.append(
            _row(5.0, 1.0, 0.9, {"ceiling_fan": 4.0}, seed=s, strategy="flywheel", turn=1, labels_spent=10)
        )
        rows.append(
            _row(
                flywheel_last_fa[s],
                1.0,
                minor,
                {"ceiling_fan": 0.5 + s},
                seed=s,
                strategy="flywheel",
                turn=2,
                labels_spent=20,
            )
        )
        rows.append(_row(6.0, 1.0, 0.9, seed=s, strategy="random", turn=1, labels_spent=10))
        rows.append(_row(random_last_fa[s], 0.98, 0.9, seed=s, strategy="random", turn=2, labels_spent=20))
    cfar = _row(30.0, 0.8, None, {"ceiling_fan": 25.0})
    ceiling = [
        _row(3.0 + s, 0.97, 0.93, {"pet": 2.0 * s}, seed=s, strategy="every_window", turn=2, labels_spent=900)
        for s in (0, 1)
    ]
    return summarise(ex, 2, 2, seed_rows, rows, cfar, None, [{"batch": "seed"}], ceiling)


def test_summary_aggregates_over_seeds_per_strategy_and_turn():
    results = fabricated()
    assert results["seed_model"]["false_triggers_per_empty_hour"] == {
        "mean": 11.0,
        "std": pytest.approx(np.std([10.0, 12.0], ddof=1)),
        "min": 10.0,
        "max": 12.0,
        "n": 2,
    }
    last = results["strategies"]["flywheel"]["2"]
    assert last["false_triggers_per_empty_hour"]["mean"] == pytest.approx(0.5)
    assert last["labels_spent"]["mean"] == 20 and last["labels_spent"]["std"] == 0.0
    assert last["by_event_type"] == {"ceiling_fan": pytest.approx(1.0)}
    assert results["seed_model"]["by_event_type"] == {"ceiling_fan": 8.0}  # one seed saw it
    assert set(results["strategies"]) == {"flywheel", "random"} and set(results["strategies"]["random"]) == {
        "1",
        "2",
    }
    assert "quick" not in results["config"] and results["rare_event_enrichment"] is None


def test_targets_are_checked_on_the_flywheel_last_turn():
    t = fabricated()["targets"]
    assert t["evaluated"] and t["fa_reduction_vs_seed"] == pytest.approx(22.0)
    assert t["fa_reduction_vs_random"] == pytest.approx(4.0)
    assert t["met_fa_vs_seed"] and t["met_fa_vs_random"] and t["met_entry_recall"] and t["met_false_absences"]
    assert t["all_met"]

    # more false absences than the seed model (0.95 against 0.91 per occupied hour) is not met
    t = fabricated(random_last_fa=(1.0, 1.0), minor=0.95)["targets"]
    assert t["fa_reduction_vs_random"] == pytest.approx(2.0)
    assert not t["met_fa_vs_random"] and not t["met_false_absences"] and t["met_fa_vs_seed"]
    assert not t["all_met"]

    t = fabricated(flywheel_last_fa=(0.0, 0.0))["targets"]  # nothing left to reduce: any factor met
    assert t["fa_reduction_vs_seed"] is None and t["met_fa_vs_seed"] and t["met_fa_vs_random"]

    # the label-efficiency targets: random never reached the flywheel's 0.5 FA/h, so the ratio is only
    # known to be at least 1 (20 labels each): not 3x; the flywheel took 150 % of the ceiling's reduction
    # with 2.2 % of its labels (over 2 %); no rare-event measurement
    results = fabricated()
    proof_targets = {"label_efficiency_vs_random": 3.0, "ceiling_reduction_share": 0.8,
                     "ceiling_label_share": 0.02, "rare_share_vs_sample": 10.0}  # fmt: skip
    ex = {**results["config"], "proof_targets": proof_targets}
    t = check_targets(ex, results["seed_model"], results["strategies"], 2, results["proof"], None)
    assert t["label_efficiency_vs_random"] == pytest.approx(1.0) and t["label_efficiency_vs_random_is_bound"]
    assert not t["met_label_efficiency_vs_random"] and not t["met_ceiling"]
    assert not t["met_rare_share_vs_sample"] and not t["all_met"]
    assert t["ceiling_label_share"] == pytest.approx(20 / 900)

    seed = {"false_triggers_per_empty_hour": {"mean": 1.0}}
    assert check_targets({"targets": {}}, seed, {"random": {}}, 2) == {
        "evaluated": False,
        "reason": "flywheel strategy not run",
    }


def test_degenerate_models_are_flagged_not_ranked():
    results = fabricated()
    rows = [dict(r) for r in results["rows"]]
    for r in rows:  # random's last turn never fires on seed 1: its FA/h of 2.0 must not be averaged in
        if r["strategy"] == "random" and r["turn"] == 2 and r["seed"] == 1:
            r.update(false_triggers_per_empty_hour=0.0, entry_recall=0.0, degenerate="never fires")
    ex = {**results["config"], "targets": results["config"]["targets"]}
    again = summarise(ex, 2, 2, results["seed_rows"], rows, results["cfar"], None, [])
    last = again["strategies"]["random"]["2"]
    assert last["degenerate"] == {"never fires": 1} and last["entry_recall"]["n"] == 1
    assert last["entry_recall"]["mean"] == pytest.approx(0.98)
    assert "| random (**degenerate**: never fires in 1 of 2 seeds) | 2 |" in markdown_table(again)
    for r in rows:  # every seed of the flywheel's last turn degenerate: no target is judged on it
        if r["strategy"] == "flywheel" and r["turn"] == 2:
            r["degenerate"] = "always present"
    t = summarise(ex, 2, 2, results["seed_rows"], rows, results["cfar"], None, [])["targets"]
    assert t == {
        "evaluated": False,
        "reason": "every seed of the flywheel's last turn is degenerate (always present)",
    }


def test_report_table_and_files(tmp_path):
    results = fabricated()
    table = markdown_table(results)
    lines = table.splitlines()

    def has_row(prefix: str) -> bool:  # the first seven columns; the FA split is tested on its own
        return any(line.startswith(prefix) for line in lines)

    assert has_row("| seed model | 0 | 0 | 11.00 ± 1.41 | 99.50 ± 0.71 | 0.91 ± 0.01 | – | – |")
    assert "| CFAR | – | – | 30.00 | 80.00 | – | – | – | – | – | – |" in lines
    assert has_row("| flywheel | 2 | 20.00 ± 0.00 | 0.50 ± 0.14 | 100.00 ± 0.00 | 0.85 ± 0.00 | – | – |")
    assert sum(line.startswith("| random |") for line in lines) == 2
    assert "- FA/h reduction vs seed: 22.00× (met: True)" in lines
    ceiling_line = (
        "| every field window labelled | 2 | 900.00 ± 0.00 | 3.50 ± 0.71 | 97.00 ± 0.00 "
        "| 0.93 ± 0.00 | – | – |"
    )
    assert has_row(ceiling_line)
    assert results["every_window"]["by_event_type"] == {"pet": pytest.approx(1.0)}

    write_report(results, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["targets"]["all_met"] is True
    assert (tmp_path / "results.md").read_text() == table
    # the flywheel reached 0.5 FA/h with 20 labels, random never did (2.0 after 20): at least 1x
    assert "- random: no ratio" not in table and "random never reached it: at least 1.00× the labels" in table
    assert "- gain over random at turn 2: 1.50 ± 0.14 FA/h over 2 seeds" in table
    for name in ("fa_by_event_type", "fa_by_type_per_turn", "recall_vs_turn", "fa_vs_labels"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_false_alarms_are_compared_at_the_seed_models_recall(tmp_path):
    from bench.experiment_report import fa_at_recall

    def point(fa, recall, absences):
        return {
            "false_triggers_per_empty_hour": fa,
            "entry_recall": recall,
            "false_absences_per_occupied_hour": absences,
        }

    curve = [point(9.0, 1.0, 0.5), point(4.0, 0.99, 0.9), point(1.0, 0.90, 1.2)]
    assert fa_at_recall(curve, 0.99, 1.0) == 4.0
    assert fa_at_recall(curve, 0.99, 0.8) == 9.0  # false absences must hold too
    assert fa_at_recall(curve, 1.01, None) is None and fa_at_recall(None, 0.5, 0.5) is None

    ex = {
        "strategies": ["flywheel"],
        "targets": LENIENT_TARGETS,
    }
    seed_rows = [_row(20.0, 0.95, 1.0, seed=0, curve=[point(20.0, 0.95, 1.0)])]
    rows = [_row(30.0, 0.99, 0.95, seed=0, strategy="flywheel", turn=1, labels_spent=5, curve=curve)]
    results = summarise(ex, 1, 1, seed_rows, rows, _row(30.0, 0.8, None), None, [])
    # the flywheel model at its own thresholds: 30 FA/h; at the seed's 95 % recall, 1.0 absences/h: 4 FA/h
    assert results["strategies"]["flywheel"]["1"]["fa_at_seed_recall"]["mean"] == 4.0
    assert results["targets"]["fa_reduction_vs_seed_at_seed_recall"] == pytest.approx(5.0)
    assert any(
        line.startswith("| flywheel | 1 | 5.00 | 30.00 | 99.00 | 0.95 | – | 4.00 |")
        for line in markdown_table(results).splitlines()
    )
    write_report(results, tmp_path)
    assert (tmp_path / "plots" / "fa_vs_recall.png").read_bytes()[:4] == b"\x89PNG"


# --- one tiny end-to-end run ---------------------------------------------------------------------

TINY = {
    "budget": 12,
    "epochs": 1,
    "strategies": ["flywheel", "random", "self_training"],
    "labeled_embedding_limit": 2000,
    "batches": {
        "seed": {"preset": "seed", "devices": 1, "hours": 0.05, "seed": 111},
        "field": {"preset": "field", "devices": 1, "hours": 0.1, "seed": 122},
        "eval": {"preset": "eval", "devices": 1, "hours": 0.05, "seed": 133},
        "household": {"preset": "household", "devices": 1, "hours": 0.05, "seed": 144},
        "release": {"preset": "eval", "devices": 1, "hours": 0.05, "seed": 155},
    },
    "rare_event": {"enabled": False, "hours": 0.1, "lab_windows": 200},
    "ceiling": True,
}


@pytest.mark.slow
def test_tiny_experiment_end_to_end_is_budgeted_and_deterministic(params, tmp_path):
    from bench.closed_loop import make_bundle
    from bench.experiment import SeedRun, run_paths, run_strategy, world_paths
    from common.io import read_json

    p = copy.deepcopy(params)
    p["experiment"]["quick"] = {**p["experiment"]["quick"], **TINY}
    ex = experiment_config(p, quick=True)
    steps: list[str] = []
    results = run_experiment(p, tmp_path / "run", turns=2, seeds=1, quick=True, progress=steps.append)
    assert len(steps) == count_steps(ex, 2, 1)

    rows = results["rows"]
    assert [(r["strategy"], r["turn"]) for r in rows] == [
        ("flywheel", 1),
        ("flywheel", 2),
        ("random", 1),
        ("random", 2),
        ("self_training", 1),
        ("self_training", 2),
    ]
    for r in (r for r in rows if r["strategy"] == "self_training"):  # the seed model's own labels, free
        assert r["labels_spent"] == 0 and r["pseudo_labels"] == sum(r["paid_by_class"].values())
        path = tmp_path / "run" / "work" / "seed-0" / "self_training" / "labels" / r["field_batch"]
        labels = pl.read_parquet(path / "labels.parquet")
        assert "oracle" not in set(labels["source"])
        assert labels.filter(pl.col("source") == "pseudo").height == r["pseudo_labels"]
    for strategy in ("flywheel", "random"):
        spent = weak = 0
        for r in (r for r in rows if r["strategy"] == strategy):
            paid_this_turn = sum(r["paid_by_class"].values())
            assert paid_this_turn == sum(r["picks_by_strategy"].values()) <= TINY["budget"]
            spent += paid_this_turn
            assert r["labels_spent"] == spent <= TINY["budget"] * r["turn"]
            labels = pl.read_parquet(
                tmp_path
                / "run"
                / "work"
                / "seed-0"
                / strategy
                / "labels"
                / r["field_batch"]
                / "labels.parquet"
            )
            paid = labels.filter(pl.col("source") == "oracle")
            assert paid.height == paid_this_turn and paid["window_id"].n_unique() == paid.height
            assert (
                labels.filter(pl.col("source") != "oracle")["window_id"]
                .is_in(paid["window_id"].implode())
                .sum()
                == 0
            )
            weak += labels.height - paid.height  # free dialogue labels, counted apart from paid ones
            assert r["weak_labels"] == weak
            assert all(r[k] is None or r[k] >= 0.0 for k in METRICS)
    # equal label budgets: every strategy spent the same number of paid labels per turn
    by_turn = {(r["strategy"], r["turn"]): r["labels_spent"] for r in rows}
    assert by_turn[("flywheel", 1)] == by_turn[("random", 1)] == TINY["budget"]
    assert by_turn[("flywheel", 2)] == by_turn[("random", 2)] == 2 * TINY["budget"]
    assert set(rows[2]["picks_by_strategy"]) == {"random"}
    assert set(rows[0]["picks_by_strategy"]) - {"random_fill"} <= set(p["mining"]["quotas"])

    n_points = len(p["experiment"]["curve_thresholds"])  # plus the detector's own threshold, when new
    assert n_points > 0 and all(n_points <= len(r["curve"]) <= n_points + 1 for r in rows)
    (seed_row,) = results["seed_rows"]
    assert seed_row["seed"] == 0 and all(k in seed_row for k in METRICS)
    assert seed_row["false_triggers_per_empty_hour"] is not None
    assert seed_row["household"]["device_days"] > 0  # every model is also judged on household days
    assert results["cfar"]["false_triggers_per_empty_hour"] is not None and "by_event_type" in results["cfar"]
    table = (tmp_path / "run" / "results.md").read_text()
    # a model of one epoch may never fire: it is flagged in its row's name, never ranked
    seed_name = "seed model" + (" (**degenerate**: " if seed_row["degenerate"] else " | 0 | 0 |")
    random_2 = next(r for r in rows if (r["strategy"], r["turn"]) == ("random", 2))
    random_name = "| random" + (" (**degenerate**: " if random_2["degenerate"] else " | 2 | 24.00 |")
    assert f"| {seed_name}" in table and "| CFAR" in table and random_name in table
    # the closed loop: turn 1's field units ran the seed bundle (one batch for every strategy), turn 2's
    # the bundle the strategy's release gate shipped after turn 1; the strategy mined with it
    for strategy in ("flywheel", "random", "self_training"):
        first, second = (r for r in rows if r["strategy"] == strategy)
        assert first["field_batch"] == "s0-field-1" and first["mined_with"] == "seed"
        assert second["field_batch"] == f"s0-{strategy}-field-2"
        assert second["mined_with"] == first["release"]["shipped"] in ("turn-1", "seed")
        assert first["release"]["candidate"] == "turn-1" and first["release"]["incumbent"] == "seed"
        assert first["uploads"]["captures"] > 0 and 0 <= first["pool_rare"] <= first["pool"]
        assert 0 <= first["rare_picked"] <= first["picked"]
    captures = tmp_path / "run" / "work" / "raw" / "s0-flywheel-field-2" / "captures.jsonl"
    firmware = {json.loads(line)["firmware"] for line in captures.read_text().splitlines()}
    assert firmware == {"bundle"}  # units ran the released bundle folder, not the factory detector
    assert set(results["proof"]["labelled_rare_share"]) == {"flywheel", "random", "self_training"}
    # the ceiling trained on every window of the field batches the flywheel's fleet uploaded
    n_field = sum(
        pl.scan_parquet(tmp_path / "run" / "work" / "curated" / r["field_batch"] / "windows.parquet")
        .select(pl.len())
        .collect()
        .item()
        for r in rows
        if r["strategy"] == "flywheel"
    )
    (ceiling,) = results["every_window_rows"]
    assert ceiling["labels_spent"] == n_field > 2 * TINY["budget"]
    flagged = " (**degenerate**: " if ceiling["degenerate"] else " | 2 |"
    ceiling_name = f"| every field window labelled{flagged}"
    assert ceiling["false_triggers_per_empty_hour"] is not None and ceiling_name in table
    assert json.loads((tmp_path / "run" / "results.json").read_text())["rows"] == json.loads(json.dumps(rows))

    # determinism: the same seed on the same world picks the same windows and trains the same model
    world = world_paths(tmp_path / "run" / "work")
    seed_paths = run_paths(world, world.root / "seed-0" / "seed-model", "seed")
    seed_dir = seed_paths.model("seed")
    detector = read_json(seed_dir / "checkpoint" / "detector.json")
    seed = SeedRun(
        0, (seed_dir / "onnx" / "model_float.onnx", detector), make_bundle(p, seed_paths, "seed", detector)
    )
    again, _, _, _ = run_strategy(
        run_params(p, ex, 0), ex, world, "flywheel", 1, seed, tmp_path / "again", lambda _: None
    )
    added_by_summary = {"seed", "fa_at_seed_recall"}
    first = {k: v for k, v in rows[0].items() if k not in added_by_summary}
    differ = {k for k in first.keys() | again[0].keys() if again[0].get(k) != first.get(k)}
    assert len(again) == 1 and differ == set()
    labels = Path("labels") / "s0-field-1" / "labels.parquet"
    first_labels = pl.read_parquet(world.root / "seed-0" / "flywheel" / labels)
    assert pl.read_parquet(tmp_path / "again" / "flywheel" / labels).equals(first_labels)
    # the experiment's models come from the export stage: int8 and its DSP budget check beside the float
    onnx = world.root / "seed-0" / "flywheel" / "models" / "turn-2" / "onnx"
    assert (onnx / "model_int8.onnx").stat().st_size > 0 and read_json(onnx / "budget.json")


def test_false_alarms_split_into_entries_and_re_entries(tmp_path):
    ex = {
        "strategies": ["flywheel", "random"],
        "targets": LENIENT_TARGETS,
    }

    def split(fa, strict, seed=0, **extra):
        return _row(
            fa,
            0.95,
            0.9,
            seed=seed,
            false_triggers_per_empty_hour_strict=strict,
            false_triggers_per_empty_hour_lenient=fa - strict,
            empty_present_fraction=0.25,
            **extra,
        )

    seed_rows = [split(20.0, 12.0)]
    rows = [
        split(18.0, 3.0, strategy="flywheel", turn=1, labels_spent=5),
        split(19.0, 6.0, strategy="random", turn=1, labels_spent=5),
    ]
    results = summarise(ex, 1, 1, seed_rows, rows, _row(30.0, 0.8, None), None, [])
    assert results["targets"]["entry_fa_reduction_vs_seed"] == pytest.approx(4.0)
    assert results["targets"]["entry_fa_reduction_vs_random"] == pytest.approx(2.0)
    table = markdown_table(results)
    assert (
        "| flywheel | 1 | 5.00 | 18.00 | 95.00 | 0.90 | – | – | 3.00 | 15.00 | 0.25 |" in table.splitlines()
    )
    assert (
        "- entries only (strict onsets): FA/h 4.00× lower than the seed model, 2.00× lower than random"
        in table
    )
