"""Enrichment bookkeeping: the share of rare events among uploads, by trigger, factory vs rare trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import enrichment
from bench.enrichment import rare_upload_share, write_bundle_folder


def write_batch(raw: Path, truth: Path, captures: list[tuple[str, str]], events: list[tuple[str, str]]):
    """captures: (capture_id, trigger); events: (capture_id, event_type)."""
    from fleet.events import EVENT_INFO

    raw.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"capture_id": c, "device_id": "dev-0", "trigger": t}) for c, t in captures]
    (raw / "captures.jsonl").write_text("\n".join(lines) + "\n\n")  # a trailing blank line is fine
    rows = []
    for c, kind in events:
        presence, motion = EVENT_INFO[kind]
        rows.append(
            {
                "capture_id": c,
                "t0_s": 0.0,
                "t1_s": 1.0,
                "event_type": kind,
                "is_presence": presence,
                "motion_class": motion,
            }
        )
    (truth / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_rare_upload_share_counts_captures_holding_a_rare_event(tmp_path):
    captures = [
        ("c1", "sample"),  # ceiling fan twice: one rare capture, not two
        ("c2", "sample"),  # a person only
        ("c3", "detection"),  # a person walking under a fan: still holds a rare event
        ("c4", "rare_event"),  # music distortion
        ("c5", "rare_event"),  # nothing in truth: empty room
        ("c6", "detection"),  # a pet
    ]
    events = [
        ("c1", "ceiling_fan"),
        ("c1", "ceiling_fan"),
        ("c2", "typing"),
        ("c3", "walk_in"),
        ("c3", "pedestal_fan"),
        ("c4", "music"),
        ("c6", "pet"),
        ("c9", "curtain"),  # a capture that was never uploaded does not count
    ]
    write_batch(tmp_path / "raw", tmp_path / "truth", captures, events)
    share = rare_upload_share(tmp_path / "raw", tmp_path / "truth")
    assert share == {
        "captures": 6,
        "rare_captures": 4,
        "rare_share": pytest.approx(4 / 6),
        "by_trigger": {
            "sample": {"captures": 2, "rare": 1},
            "detection": {"captures": 2, "rare": 2},
            "rare_event": {"captures": 2, "rare": 1},
        },
    }


def test_rare_upload_share_without_truth_or_uploads(tmp_path):
    write_batch(tmp_path / "raw", tmp_path / "truth", [("c1", "sample")], [])
    (tmp_path / "truth" / "events.jsonl").unlink()
    assert rare_upload_share(tmp_path / "raw", tmp_path / "truth")["rare_share"] == 0.0
    write_batch(tmp_path / "empty", tmp_path / "truth", [], [("c1", "pet")])
    (tmp_path / "empty" / "captures.jsonl").write_text("")
    assert rare_upload_share(tmp_path / "empty", tmp_path / "truth") == {
        "captures": 0,
        "rare_captures": 0,
        "rare_share": 0.0,
        "by_trigger": {},
    }


def test_write_bundle_folder_carries_the_trigger_only_when_given(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx-bytes")
    with_trigger = write_bundle_folder(tmp_path / "a", model, {"hop": 64}, {"hold_s": 5.0}, b"rare")
    payload = with_trigger / "payload"
    assert (payload / "model_int8.onnx").read_bytes() == b"onnx-bytes"
    assert json.loads((payload / "frontend.json").read_text()) == {"hop": 64}
    assert json.loads((payload / "detector.json").read_text()) == {"hold_s": 5.0}
    assert (payload / "rare_event.onnx").read_bytes() == b"rare"
    without = write_bundle_folder(tmp_path / "b", model, {}, {}, None)
    assert not (without / "payload" / "rare_event.onnx").exists()


def test_measure_enrichment_compares_factory_and_trigger_batches(tmp_path, monkeypatch):
    """simulate_batch stubbed: factory uploads 1 rare of 10, the trigger's fleet 6 of 12 → 5×."""
    import fleet.simulate

    calls = []

    def fake_simulate(preset, n_devices, hours, seed, raw, truth, batch_id=None, bundle_path=None, **_):
        calls.append((preset, n_devices, hours, seed, batch_id, bundle_path))
        n, n_rare = (12, 6) if bundle_path else (10, 1)
        caps = [(f"{batch_id}-{i}", "rare_event" if i < n_rare else "sample") for i in range(n)]
        write_batch(Path(raw), Path(truth), caps, [(c, "curtain") for c, _ in caps[:n_rare]])

    monkeypatch.setattr(fleet.simulate, "simulate_batch", fake_simulate)
    params = {"simulate": {}}
    stale = tmp_path / "work" / "raw" / "rare-trigger"
    stale.mkdir(parents=True)
    (stale / "leftover.txt").write_text("from an earlier run")
    out = enrichment.measure_enrichment(params, tmp_path / "work", tmp_path / "bundle", 3, 0.5, 42)
    assert [c[:5] for c in calls] == [("field", 3, 0.5, 42, "factory"), ("field", 3, 0.5, 42, "rare-trigger")]
    assert calls[0][5] is None and calls[1][5] == tmp_path / "bundle"  # same devices, hours, seed
    assert out["factory"]["rare_share"] == pytest.approx(0.1)
    assert out["rare_trigger"]["rare_share"] == pytest.approx(0.5)
    assert out["enrichment"] == pytest.approx(5.0)
    assert not (stale / "leftover.txt").exists()

    # a given factory batch is not simulated again; no rare upload before → no finite factor
    factory = (tmp_path / "f-raw", tmp_path / "f-truth")
    write_batch(*factory, [("x", "sample")], [])
    calls.clear()
    out = enrichment.measure_enrichment(params, tmp_path / "w2", tmp_path / "bundle", 3, 0.5, 42, factory)
    assert [c[4] for c in calls] == ["rare-trigger"] and out["enrichment"] is None


def test_enrichment_figures_compare_the_trigger_with_the_random_sample():
    from bench.enrichment import enrichment_figures

    before = {
        "rare_share": 0.4,
        "rare_captures": 40,
        "by_trigger": {"detection": {"captures": 80, "rare": 38}, "sample": {"captures": 20, "rare": 2}},
    }
    after = {
        "rare_share": 0.5,
        "rare_captures": 60,
        "by_trigger": {**before["by_trigger"], "rare_event": {"captures": 25, "rare": 20}},
    }
    out = enrichment_figures(before, after)
    assert out["enrichment"] == pytest.approx(1.25)  # diluted by the detection uploads
    assert out["trigger_rare_share"] == pytest.approx(0.8) and out["sample_rare_share"] == pytest.approx(0.1)
    assert out["enrichment_vs_sample"] == pytest.approx(8.0) and out["rare_captures_ratio"] == pytest.approx(
        1.5
    )
    assert enrichment_figures(before, before)["enrichment_vs_sample"] is None  # no trigger uploads
