"""bench/ablation.py's bookkeeping on fabricated rows: means over the seeds that are not degenerate,
the variants' params, and the table."""

from __future__ import annotations

import pytest

from bench.ablation import markdown_table, summarise_variant, variant_params
from common.params import load_params


def _row(fa: float, recall: float, degenerate: str | None = None) -> dict:
    return {
        "false_triggers_per_empty_hour": fa,
        "false_triggers_per_device_day": 2 * fa,
        "entry_recall": recall,
        "entry_latency_p95_s": 1.0,
        "false_absences_per_occupied_hour": 0.5,
        "household_false_absences_per_occupied_hour": 0.1,
        "household_occupied_absent_fraction": 0.2,
        "macs_per_inference": 512_000,
        "int8_weight_bytes": 10_900,
        "int8_gate_passed": True,
        "degenerate": degenerate,
    }


def test_degenerate_seeds_are_counted_not_averaged() -> None:
    s = summarise_variant([_row(10.0, 1.0), _row(14.0, 0.9), _row(0.0, 0.0, "never fires")])
    assert s["seeds"] == 3 and s["degenerate"] == ["never fires"]
    assert s["false_triggers_per_empty_hour"] == pytest.approx(12.0)
    assert s["false_triggers_per_empty_hour_spread"] == pytest.approx(2.0**0.5 * 2.0)
    assert s["entry_recall"] == pytest.approx(0.95) and s["int8_gate_passed"] is True
    table = markdown_table({"space": s}, {"space": {"frontend": {"channels": ["power", "direct"]}}})
    row = "| space | power, direct | seed set | params | 3 (**not ranked**: never fires) | 12 ± 2.8 |"
    assert row in table


def test_a_variant_changes_only_its_front_end_and_the_seed() -> None:
    params = load_params()
    ab = params["bench"]["ablation"]
    p = variant_params(params, ab, ab["variants"]["all"], 8)
    assert p["frontend"]["channels"] == ["power", "direct", "recent", "background"]
    assert p["training"]["seed"] == 8 and p["training"]["epochs"] == ab["epochs"]
    assert p["simulate"]["batches"]["eval"] == ab["batches"]["eval"]
    assert {k: v for k, v in p["frontend"].items() if k != "channels"} == {
        k: v for k, v in params["frontend"].items() if k != "channels"
    }


def test_a_model_over_the_dsp_budget_is_reported_not_averaged() -> None:
    reason = "model over the speaker4 budget: activations: peak 36,864 bytes"
    over = {"over_budget": reason, "degenerate": None}
    s = summarise_variant([_row(10.0, 1.0), over])
    assert s["seeds"] == 2 and s["false_triggers_per_empty_hour"] == pytest.approx(10.0)
    assert s["degenerate"] == ["over the DSP budget (activations: peak 36,864 bytes)"]


def test_variants_are_checked_before_anything_runs() -> None:
    from bench.ablation import check_variants

    power = {"frontend": {"channels": ["power"]}}
    check_variants(load_params()["bench"]["ablation"]["variants"])  # the shipped ones are valid
    with pytest.raises(ValueError, match="unknown keys"):
        check_variants({"a": {**power, "labels_": "seed"}})
    with pytest.raises(ValueError, match="is not one of"):
        check_variants({"a": {**power, "labels": "all"}})
    with pytest.raises(ValueError, match="not state-machine fields"):
        check_variants({"a": power, "b": {**power, "model_of": "a", "detector": {"hold": 3}}})
    with pytest.raises(ValueError, match="not an earlier variant"):
        check_variants({"b": {**power, "model_of": "a"}, "a": power})
    with pytest.raises(ValueError, match="needs the same"):
        check_variants({"a": power, "b": {"frontend": {"channels": ["power", "direct"]}, "model_of": "a"}})


def test_a_state_machine_variant_evaluates_the_same_model_under_its_rules(tmp_path) -> None:
    import json

    from bench.ablation import reuse_model, seed_paths, variant_params
    from common.paths import Paths

    params = load_params()
    ab = params["bench"]["ablation"]
    variant = ab["variants"]["power_reentry"]
    assert variant_params(params, ab, variant, 7)["detector"]["lenient_reentry"] is True
    world = Paths(tmp_path, "ablation")
    source = seed_paths(Paths(tmp_path / "variants" / "power", "ablation"), 7).model("seed")
    target = seed_paths(Paths(tmp_path / "variants" / "power_reentry", "ablation"), 7)
    assert not reuse_model(world, variant, target, 7, "seed")  # power exported nothing (over budget)
    (source / "onnx").mkdir(parents=True)
    (source / "checkpoint").mkdir()
    (source / "onnx" / "model_int8.onnx").write_bytes(b"int8")
    (source / "checkpoint" / "detector.json").write_text(
        json.dumps({"strict_threshold": 0.9, "hold_s": 15.0})
    )
    assert reuse_model(world, variant, target, 7, "seed")
    assert (target.model("seed") / "onnx" / "model_int8.onnx").read_bytes() == b"int8"
    detector = json.loads((target.model("seed") / "checkpoint" / "detector.json").read_text())
    assert detector == {"strict_threshold": 0.9, "hold_s": 15.0, "lenient_reentry": True}  # thresholds kept


def test_the_table_names_each_rows_labels_and_state_machine() -> None:
    variants = load_params()["bench"]["ablation"]["variants"]
    summary = {name: summarise_variant([_row(10.0, 1.0)]) for name in ("power_every_window", "power_hold_5s")}
    table = markdown_table(summary, variants)
    assert "| power_every_window | power | seed set + every field window | params | 1 |" in table
    assert "| power_hold_5s | power | seed set | hold_s 5.0 | 1 |" in table
