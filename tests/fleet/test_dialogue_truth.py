"""The simulator's dialogue for self-learning: recurring misrecognitions across devices, rephrases,
and what really failed recorded in truth only."""

import json

import pytest

from fleet.config import sim_section
from fleet.dialogue import MISHEARINGS, REPHRASINGS, confusion_table
from fleet.dialogue_fleet import simulate_dialogue_fleet
from mining.failure_points import FAILURE_POINTS


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    root = tmp_path_factory.mktemp("dialogue-fleet")
    summary = simulate_dialogue_fleet(10, 12.0, 5, root / "raw" / "d", root / "truth" / "d")
    rows = [json.loads(line) for line in (root / "raw" / "d" / "dialogue.jsonl").read_text().splitlines()]
    truth = [
        json.loads(line) for line in (root / "truth" / "d" / "dialogue_truth.jsonl").read_text().splitlines()
    ]
    return root, summary, rows, truth


def test_confusion_table_is_per_fleet_and_stable():
    cfg = sim_section(None)["dialogue"]
    table = confusion_table(1729, cfg)
    assert table == confusion_table(1729, cfg) and table  # the same fleet, the same confusions
    assert all(heard in MISHEARINGS[said] for said, heard in table.items())
    assert any(confusion_table(s, cfg) != table for s in range(5))  # another fleet, other phrases
    assert confusion_table(1729, {**cfg, "confusable_phrase_prob": 0.0}) == {}


def test_the_same_mishearings_recur_across_devices_and_users_rephrase(fleet):
    _, _, rows, truth = fleet
    heard = set(confusion_table(1729, sim_section(None)["dialogue"]).values())
    devices_per = {}
    for r in rows:
        if r["kind"] == "turn" and r["utterance"] in heard:
            devices_per.setdefault(r["utterance"], set()).add(r["device_id"])
    assert max(len(d) for d in devices_per.values()) >= 3
    retried = [t for t in truth if t["kind"] == "voice" and len(t["event_ids"]) > 1]
    assert retried and any(t["outcome"] == "success" for t in retried)
    turn_of = {r["event_id"]: r for r in rows}
    rephrased = {turn_of[t["event_ids"][1]]["utterance"] for t in retried if t["said"] in REPHRASINGS}
    assert rephrased & {w for ws in REPHRASINGS.values() for w in ws}  # other wordings, not only repeats


def test_truth_names_real_events_and_stays_out_of_the_raw_log(fleet):
    _, summary, rows, truth = fleet
    ids = {r["event_id"] for r in rows}
    assert truth and all(set(t["event_ids"]) <= ids for t in truth)
    assert {t["failure_point"] for t in truth} <= set(FAILURE_POINTS)
    assert {t["failure_point"] for t in truth} >= {"asr", "false_wake", "presence_missed", "correct"}
    for r in rows:  # the raw log carries the contract's fields only
        assert not {"failure_point", "components", "said", "outcome"} & set(r)
    recovered = [t for t in truth if t.get("outcome") == "success"]
    assert all(t["failure_point"] == "correct" for t in recovered)  # a recovered error is no failure
    assert summary["interactions"] == len(truth)


def test_dialogue_fleet_is_deterministic(fleet, tmp_path):
    root, *_ = fleet
    simulate_dialogue_fleet(10, 12.0, 5, tmp_path / "raw" / "d", tmp_path / "truth" / "d")  # same batch name
    for rel in ("raw/d/dialogue.jsonl", "truth/d/dialogue_truth.jsonl"):
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes()
    with pytest.raises(ValueError):
        simulate_dialogue_fleet(0, 1.0, 5, tmp_path / "r", tmp_path / "t")
