"""Timelines per preset (type mix and rarity) and dialogue consistency with the truth."""

import datetime as dt

import numpy as np
import pytest

from fleet.config import sim_section
from fleet.dialogue import DialogueLog, build_dialogue
from fleet.events import EVENT_INFO, RARE
from fleet.rooms import make_room
from fleet.timeline import COMMON, plan, presence_intervals


@pytest.fixture(scope="module")
def room():
    return make_room(0.9, np.random.default_rng(0))


def shares(p, total):
    out: dict = {}
    for e in p.events:
        out[e.event_type] = out.get(e.event_type, 0.0) + (e.t1 - e.t0) / total
    return out


def test_seed_plan_is_balanced_common_types(room):
    sim = sim_section(None)
    p = plan("seed", 3600, np.random.default_rng(1), room, sim)
    kinds = [e.event_type for e in p.events]
    assert set(kinds) == set(COMMON)
    counts = np.array([kinds.count(k) for k in COMMON])
    assert counts.max() - counts.min() <= 0.5 * counts.mean()


def test_field_plan_rare_types_are_rare(room):
    sim = sim_section(None)
    total = 24 * 3600.0
    s = shares(plan("field", total, np.random.default_rng(2), room, sim), total)
    for k in RARE:
        if k != "music":
            assert 0.0005 <= s.get(k, 0) <= 0.02, (k, s.get(k))
    presence = sum(v for k, v in s.items() if EVENT_INFO[k][0])
    assert 0.1 < presence < 0.6


def test_eval_plan_covers_every_type(room):
    sim = sim_section(None)
    p = plan("eval", 3 * 3600.0, np.random.default_rng(3), room, sim)
    kinds = [e.event_type for e in p.events]
    assert all(kinds.count(k) >= 3 for k in EVENT_INFO), {k: kinds.count(k) for k in EVENT_INFO}
    assert len(p.playback) == kinds.count("music")


def _visits(events):
    """Presence events grouped into occupancy visits (merged like training.metrics: gaps <= 1 s)."""
    visits: list[list] = []
    for e in sorted((e for e in events if e.is_presence), key=lambda e: e.t0):
        if visits and e.t0 <= max(v.t1 for v in visits[-1]) + 1.0:
            visits[-1].append(e)
        else:
            visits.append([e])
    return visits


@pytest.mark.parametrize(("preset", "hours"), [("eval", 3.0), ("field", 24.0), ("household", 24.0)])
def test_people_arrive_and_leave(room, preset, hours):
    """Every visit starts at the door and ends with a departure; in between the person is always there
    (a still spell: reading, TV, asleep), so time outside visits is really empty."""
    sim = sim_section(None)
    p = plan(preset, hours * 3600.0, np.random.default_rng(6), room, sim)
    visits = _visits(p.events)
    assert len(visits) >= 5
    for visit in visits:
        first = min(visit, key=lambda e: e.t0)
        last = max(visit, key=lambda e: e.t1)
        assert first.event_type in ("walk_in", "walk_through"), [e.event_type for e in visit]
        assert last.event_type in ("walk_out", "walk_through"), [e.event_type for e in visit]
    kinds = {e.event_type for e in p.events}
    assert "still" in kinds


def test_household_nuisances_run_for_hours_and_ignore_occupancy(room):
    sim = sim_section(None)
    total = 3 * 24 * 3600.0
    p = plan("household", total, np.random.default_rng(7), room, sim)
    fans = [e.t1 - e.t0 for e in p.events if e.event_type == "ceiling_fan"]
    assert fans and max(fans) > 3600.0
    hvac = [e for e in p.events if e.event_type == "hvac"]
    assert len(hvac) >= 4  # cycles through the days
    visits = [(min(e.t0 for e in v), max(e.t1 for e in v)) for v in _visits(p.events)]
    # nuisances do not care whether anyone is home: some overlap a visit, some an empty room
    overlaps = [any(a < e.t1 and e.t0 < b for a, b in visits) for e in p.events if not e.is_presence]
    assert any(overlaps) and not all(overlaps)
    occupied = sum(b - a for a, b in visits) / total
    assert 0.15 < occupied < 0.6


def test_dialogue_follows_truth_and_device_decisions(room):
    sim = sim_section(None)
    cfg = {**sim["dialogue"], "lights_back_on_prob": 1.0, "false_trigger_report_prob": 1.0}
    p = plan("field", 6 * 3600.0, np.random.default_rng(4), room, sim)
    presence = presence_intervals(p.events)
    block = 0.25
    n_blocks = int(6 * 3600 / block)
    # a detector that sees every walk but nothing of still people, plus one false alarm at 100 s
    motion = np.zeros(n_blocks, dtype=bool)
    for e in p.events:
        if e.motion_class == "major":
            motion[int(e.t0 / block) : int(e.t1 / block)] = True
    motion[400] = not any(a <= 100 <= b for a, b in presence)
    log = DialogueLog("dev-x", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    counts = build_dialogue(
        log, presence, p.playback, p.voice_started, motion, block, np.random.default_rng(5), cfg
    )
    rows = log.sorted_rows()
    t_of = {r["event_id"]: t for t, r in log.rows}
    turns = [t for t, r in log.rows if r["kind"] == "turn"]
    assert turns and all(any(a - 2 <= t <= b + 30 for a, b in presence) for t in turns)
    assert counts["lights_back_on"] > 0  # still people lose their lights and ask for them back
    back_on = [t for t, r in log.rows if r["kind"] == "turn" and r["utterance"] == "turn the lights back on"]
    offs = [t for t, r in log.rows if r["kind"] == "routine" and r["trigger"] == "no_motion"]
    assert all(any(0 < b - o <= 20 for o in offs) for b in back_on)
    for r in rows:
        if r["kind"] == "feedback":
            assert r["target_event_id"] in t_of and r["value"] in {"false_trigger", "undo"}
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert {r["kind"] for r in rows} <= {"turn", "routine", "playback", "feedback"}
