"""Dialogue sessions from hand-written logs: time gaps, feedback joining its target, routine triggers."""

from dialogue_testkit import Script

from ingest.sessions import session_events, sessions


def test_sessions_split_on_gaps_and_feedback_joins_its_routine():
    s = Script()
    r1 = s.motion("d1", 0)  # a false trigger ...
    s.turn("d1", 200, "what's the weather like")
    s.turn("d1", 205, "what is the weather")  # a rephrase: same session
    off = s.no_motion("d1", 400)
    back = s.turn("d1", 410, "turn the lights back on")  # lights back on: with its routine
    fb = s.feedback("d1", 900, r1)  # ... reported 15 minutes later: still the routine's session
    other = s.turn("d2", 205, "stop the music")  # another device: its own session
    orphan = s.feedback("d2", 300, "not-in-this-batch")
    turns, routines, feedback = s.tables()
    events = session_events(turns, routines, feedback, gap_s=60.0)
    sid = dict(zip(events["event_id"], events["session_id"], strict=True))
    assert sid[fb] == sid[r1] != sid[s.rows[1]["event_id"]]
    assert sid[s.rows[1]["event_id"]] == sid[s.rows[2]["event_id"]]
    assert sid[off] == sid[back] != sid[s.rows[2]["event_id"]]
    assert sid[other] != sid[s.rows[1]["event_id"]] and sid[other].startswith("b:d2:")
    assert sid[orphan] not in {sid[other], sid[r1]}  # a report on an unknown event: a session of its own
    kinds = dict(zip(events["event_id"], events["kind"], strict=True))
    assert (kinds[r1], kinds[off], kinds[back], kinds[fb]) == (
        "motion_routine",
        "no_motion_routine",
        "turn",
        "feedback",
    )
    table = sessions(events)
    assert table.height == 5
    first = table.filter(table["session_id"] == sid[r1]).row(0, named=True)
    assert (first["n_motion_routines"], first["n_feedback"], first["n_turns"]) == (1, 1, 0)
    assert (first["end"] - first["start"]).total_seconds() == 900
    lights = table.filter(table["session_id"] == sid[off]).row(0, named=True)
    assert (lights["n_no_motion_routines"], lights["n_turns"]) == (1, 1)


def test_a_wider_gap_merges_sessions():
    s = Script()
    s.turn("d1", 0, "a")
    s.turn("d1", 50, "b")
    s.turn("d1", 130, "c")
    turns, routines, feedback = s.tables()
    assert sessions(session_events(turns, routines, feedback, gap_s=60.0)).height == 2
    assert sessions(session_events(turns, routines, feedback, gap_s=100.0)).height == 1
