"""A corpus of malformed raw input: each kind ends in quarantine with the right reason, none crashes."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import T0, capture_record, iso, random_iq, write_jsonl, write_raw_batch
from ingest_testkit import ingest

from common.io import read_jsonl
from ingest.pipeline import IngestError

Mutation = Callable[[Path, dict, np.random.Generator], "dict | str"]


def _save(raw: Path, rec: dict, array: np.ndarray, **kw) -> dict:
    np.save(raw / rec["file"], array, **kw)
    return rec


def truncated(raw, rec, rng):
    _save(raw, rec, random_iq(rng))
    path = raw / rec["file"]
    path.write_bytes(path.read_bytes()[:-1000])
    return rec


def huge_declared(raw, rec, rng):
    header = {"descr": "<c8", "fortran_order": False, "shape": (2, 10**11)}
    with open(raw / rec["file"], "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    return rec


def truncated_header(raw, rec, rng):
    (raw / rec["file"]).write_bytes(b"\x93NUMPY\x01\x00\x76\x00{'descr': '<c8'")
    return rec


def with_nan(raw, rec, rng):
    iq = random_iq(rng)
    iq[1, 777] = np.nan
    return _save(raw, rec, iq)


def with_inf(raw, rec, rng):
    iq = random_iq(rng)
    iq[0, 3999] = complex(np.inf, 0)
    return _save(raw, rec, iq)


def traversal(raw, rec, rng):
    np.save(raw.parent / "outside.npy", random_iq(rng))
    return rec | {"file": "../outside.npy"}


def symlink_out(raw, rec, rng):
    np.save(raw.parent / "outside2.npy", random_iq(rng))
    os.symlink(raw.parent / "outside2.npy", raw / rec["file"])
    return rec


def without(field):
    def mutate(raw, rec, rng):
        _save(raw, rec, random_iq(rng))
        return {k: v for k, v in rec.items() if k != field}

    return mutate


def fields(**changes):
    def mutate(raw, rec, rng):
        _save(raw, rec, random_iq(rng))
        return rec | changes

    return mutate


def array(make):
    def mutate(raw, rec, rng):
        return _save(raw, rec, make(rng))

    return mutate


def raw_file(name, content: bytes):
    def mutate(raw, rec, rng):
        (raw / "iq" / name).write_bytes(content)
        return rec | {"file": f"iq/{name}"}

    return mutate


# (name, expected reason, mutation); a mutation returning a str writes that raw line
CAPTURE_CORPUS: list[tuple[str, str, Mutation]] = [
    ("truncated npy", "truncated_array", truncated),
    ("truncated npy header", "truncated_array", truncated_header),
    ("wrong dtype", "wrong_dtype", array(lambda rng: random_iq(rng).astype(np.complex128))),
    ("real float array", "wrong_dtype", array(lambda rng: np.zeros((2, 4000), np.float32))),
    ("wrong shape", "wrong_shape", array(lambda rng: random_iq(rng).reshape(2, 2, 2000))),
    ("n_mics mismatch", "n_mics_mismatch", array(lambda rng: random_iq(rng, n_mics=3))),
    ("sample count vs duration", "sample_count_mismatch", array(lambda rng: random_iq(rng, n=3000))),
    ("NaN samples", "nonfinite_samples", with_nan),
    ("Inf samples", "nonfinite_samples", with_inf),
    (
        "object array (pickle)",
        "pickled_object_array",
        lambda raw, rec, rng: _save(raw, rec, np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
    ),
    ("huge declared size", "declared_size_too_large", huge_declared),
    ("not an npy file", "unreadable_npy", raw_file("garbage.npy", b"this is not numpy" * 10)),
    ("bad wav", "unreadable_wav", raw_file("garbage.wav", b"RIFF0000WAVEjunk")),
    ("neither npy nor wav", "bad_file_type", raw_file("notes.txt", b"hello")),
    ("missing file", "missing_file", lambda raw, rec, rng: rec),
    ("path traversal", "path_outside_batch", traversal),
    ("absolute path", "path_outside_batch", lambda raw, rec, rng: rec | {"file": "/etc/passwd"}),
    ("symlink out of the batch", "path_outside_batch", symlink_out),
    ("malformed JSON line", "malformed_json", lambda raw, rec, rng: '{"capture_id": "x", "device_id": '),
    (
        "NaN in JSON",
        "malformed_json",
        lambda raw, rec, rng: json.dumps(rec).replace('"duration_s": 2.0', '"duration_s": NaN'),
    ),
    ("JSON that is not an object", "not_an_object", lambda raw, rec, rng: json.dumps([rec])),
    ("missing field", "missing_field", without("carrier_hz")),
    ("null field", "missing_field", fields(device_id=None)),
    ("wrong field type", "wrong_field_type", fields(n_mics="2")),
    ("bool as a number", "wrong_field_type", fields(duration_s=True)),
    ("unknown profile", "unknown_profile", fields(profile="toaster9")),
    ("carrier out of range", "carrier_out_of_range", fields(carrier_hz=20000.0)),
    ("lab carrier below 16 kHz", "carrier_out_of_range", fields(carrier_hz=12000.0, trigger="collection")),
    ("negative duration", "nonpositive_duration", fields(duration_s=-2.0)),
    ("zero duration", "nonpositive_duration", fields(duration_s=0)),
    ("bad trigger", "bad_trigger", fields(trigger="motion")),
    ("playback volume out of range", "volume_out_of_range", fields(playback_volume=11)),
    ("negative playback volume", "volume_out_of_range", fields(playback_volume=-1)),
    ("bad timestamp", "bad_timestamp", fields(t_start="yesterday at noon")),
    ("timestamp without zone", "bad_timestamp", fields(t_start="2026-11-21T09:00:00")),
    ("zero mics", "bad_n_mics", fields(n_mics=0)),
]
DIALOGUE_CORPUS: list[tuple[str, str, dict | str]] = [
    (
        "event for unknown device",
        "unknown_device",
        {
            "event_id": "q1",
            "device_id": "ghost",
            "ts": iso(T0),
            "kind": "routine",
            "routine_id": "r",
            "trigger": "motion",
            "action": "a",
        },
    ),
    (
        "bad dialogue kind",
        "bad_dialogue_kind",
        {"event_id": "q2", "device_id": "dev-0", "ts": iso(T0), "kind": "gossip"},
    ),
    ("malformed dialogue line", "malformed_json", "{not json"),
    ("dialogue missing field", "missing_field", {"event_id": "q3", "device_id": "dev-0", "kind": "turn"}),
    (
        "bad routine trigger",
        "bad_trigger",
        {
            "event_id": "q4",
            "device_id": "dev-0",
            "ts": iso(T0),
            "kind": "routine",
            "routine_id": "r",
            "trigger": "sound",
            "action": "a",
        },
    ),
    (
        "duplicate event id",
        "duplicate_event_id",
        {"event_id": "e1", "device_id": "dev-0", "ts": iso(T0), "kind": "playback", "action": "stop"},
    ),
    (
        "asr confidence out of range",
        "confidence_out_of_range",
        {
            "event_id": "q5",
            "device_id": "dev-0",
            "ts": iso(T0),
            "kind": "turn",
            "utterance": "hi",
            "intent": "x",
            "asr_confidence": 1.5,
        },
    ),
    (
        "bad dialogue timestamp",
        "bad_timestamp",
        {"event_id": "q6", "device_id": "dev-0", "ts": "noon", "kind": "playback", "action": "stop"},
    ),
]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, params):
    """6 good captures, one line per corpus entry, a duplicate, a clock-backwards line, a lab capture."""
    root = tmp_path_factory.mktemp("corpus")
    raw = root / "raw" / "corpus-batch"
    good = write_raw_batch(raw, seed=1)
    rng = np.random.default_rng(2)
    lines: list = list(good)
    expected: dict[int, tuple[str, str]] = {}
    for k, (name, reason, mutate) in enumerate(CAPTURE_CORPUS):
        rec = capture_record(f"bad-{k:02d}", "dev-0", T0 + dt.timedelta(seconds=100 + 10 * k))
        lines.append(mutate(raw, copy.deepcopy(rec), rng))
        expected[len(lines)] = (name, reason)
    dup = copy.deepcopy(good[0])
    lines.append(dup | {"t_start": iso(T0 + dt.timedelta(hours=1))})
    expected[len(lines)] = ("duplicate capture id", "duplicate_capture_id")
    back = capture_record("back-1", "dev-1", T0 - dt.timedelta(seconds=5))
    np.save(raw / back["file"], random_iq(rng))
    lines.append(back)
    expected[len(lines)] = ("clock going backwards", "clock_backwards")
    lab = capture_record(
        "lab-ok", "dev-1", T0 + dt.timedelta(hours=2), carrier_hz=20000.0, trigger="collection"
    )
    np.save(raw / lab["file"], random_iq(rng))
    lines.append(lab)
    write_jsonl(raw / "captures.jsonl", lines)

    dialogue_lines = (raw / "dialogue.jsonl").read_text().splitlines()
    dialogue_expected = {}
    for name, reason, row in DIALOGUE_CORPUS:
        dialogue_lines.append(row if isinstance(row, str) else json.dumps(row))
        dialogue_expected[len(dialogue_lines)] = (name, reason)
    (raw / "dialogue.jsonl").write_text("\n".join(dialogue_lines) + "\n")

    run_params = copy.deepcopy(params)
    run_params["ingest"]["max_bad_fraction"] = 1.0
    curated = root / "curated"
    summary = ingest(raw, curated, run_params)
    entries = read_jsonl(curated / "quarantine" / "corpus-batch" / "quarantine.jsonl")
    return summary, entries, expected, dialogue_expected, curated, raw, params


def test_corpus_is_big_enough():
    kinds = {reason for _, reason, _ in CAPTURE_CORPUS} | {r for _, r, _ in DIALOGUE_CORPUS}
    assert len(CAPTURE_CORPUS) + len(DIALOGUE_CORPUS) + 2 >= 20
    assert len(kinds) >= 20


def test_every_malformed_capture_is_quarantined_with_its_reason(corpus_run):
    _, entries, expected, _, _, _, _ = corpus_run
    by_line = {e["line"]: e for e in entries if e["file"] == "captures.jsonl"}
    wrong = {
        name: (want, by_line.get(line, {}).get("reason"))
        for line, (name, want) in expected.items()
        if by_line.get(line, {}).get("reason") != want
    }
    assert not wrong, f"kind: (expected, got) {wrong}"
    assert set(by_line) == set(expected), "only the corrupted lines are quarantined"
    for entry in by_line.values():
        assert entry["batch"] == "corpus-batch" and entry["detail"] and entry["reason"]


def test_counts_add_up_and_reasons_are_counted_in_captures(corpus_run):
    summary, _, expected, _, curated, _, _ = corpus_run
    assert summary["received"] == 6 + len(expected) + 1
    assert summary["ingested"] == 7  # the 6 good ones and the 20 kHz lab collection capture
    assert summary["quarantined"] == len(expected)
    assert summary["received"] == summary["ingested"] + summary["quarantined"] + summary["already_present"]
    assert summary["counts_add_up"] is True
    assert sum(summary["reasons"].values()) == summary["quarantined"]
    assert summary["reasons"]["nonfinite_samples"] == 2
    ingested = pl.read_parquet(curated / "corpus-batch" / "captures.parquet")
    assert "lab-ok" in ingested["capture_id"].to_list()


def test_every_malformed_dialogue_line_is_quarantined(corpus_run):
    summary, entries, _, dialogue_expected, _, _, _ = corpus_run
    by_line = {e["line"]: e["reason"] for e in entries if e["file"] == "dialogue.jsonl"}
    assert by_line == {line: reason for line, (_, reason) in dialogue_expected.items()}
    assert summary["dialogue"]["quarantined"] == len(dialogue_expected)
    assert (
        summary["dialogue"]["received"]
        == summary["dialogue"]["ingested"] + summary["dialogue"]["quarantined"]
    )


def test_offending_files_are_copied_but_never_from_outside(corpus_run):
    _, entries, _, _, curated, raw, _ = corpus_run
    qdir = curated / "quarantine" / "corpus-batch"
    wrong_dtype = next(e for e in entries if e["capture_id"] == "bad-02")
    assert wrong_dtype["reason"] == "wrong_dtype" and wrong_dtype["copied_as"] == "files/iq/bad-02.npy"
    assert (qdir / wrong_dtype["copied_as"]).read_bytes() == (raw / "iq" / "bad-02.npy").read_bytes()
    outside = [e for e in entries if e["reason"] == "path_outside_batch"]
    assert outside and all(e.get("copied_as") is None for e in outside)
    assert not list(qdir.rglob("outside*.npy"))
    malformed = [
        e["raw"] for e in entries if e["reason"] == "malformed_json" and e["file"] == "captures.jsonl"
    ]
    assert any(raw.startswith('{"capture_id": "x"') for raw in malformed)


def test_too_many_bad_captures_fail_loudly_after_writing_quarantine(corpus_run, tmp_path):
    *_, raw, params = corpus_run
    with pytest.raises(IngestError, match="max_bad_fraction"):
        ingest(raw, tmp_path / "curated", params)  # default max_bad_fraction 0.25
    assert (tmp_path / "curated" / "quarantine" / "corpus-batch" / "quarantine.jsonl").exists()
    assert not (tmp_path / "curated" / "corpus-batch").exists()
