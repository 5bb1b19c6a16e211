"""Fixtures for ingest tests: params and a tiny valid raw batch written from scratch."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from common.params import load_params

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 21, 8, 0, 0, tzinfo=dt.UTC)
FS_HZ = 2000.0
DURATION_S = 2.0
N_MICS = 2


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def random_iq(
    rng: np.random.Generator,
    n_mics: int = N_MICS,
    n: int = int(DURATION_S * FS_HZ),
    tone_hz: float = 40.0,
    noise: float = 0.1,
) -> np.ndarray:
    """A static direct path, a 40 Hz Doppler tone at -20 dB under it, and noise."""
    t = np.arange(n) / FS_HZ
    white = rng.standard_normal((n_mics, n)) + 1j * rng.standard_normal((n_mics, n))
    direct = np.ones((n_mics, 1))
    return (direct + noise * white + 0.1 * np.exp(2j * np.pi * tone_hz * t)).astype(np.complex64)


def capture_record(capture_id: str, device_id: str, t_start: dt.datetime, **overrides) -> dict:
    record = {
        "capture_id": capture_id,
        "device_id": device_id,
        "profile": "speaker4",
        "t_start": iso(t_start),
        "duration_s": DURATION_S,
        "carrier_hz": 40000.0,
        "fs_hz": FS_HZ,
        "n_mics": N_MICS,
        "emission_db": -20.0,
        "firmware": "0.1.0",
        "trigger": "sample",
        "playback_volume": 0,
        "file": f"iq/{capture_id}.npy",
    }
    record.update(overrides)
    return record


def write_jsonl(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def dialogue_events(devices: list[str]) -> list[dict]:
    """For the first device: talking at +1 s, a motion routine with false-trigger feedback at +11 s,
    a no_motion routine at +30 s then "lights back on" at +40 s, and music at volume 6 from +20 s."""
    d = devices[0]

    def at(s: float) -> str:
        return iso(T0 + dt.timedelta(seconds=s))

    return [
        {
            "event_id": "e1",
            "device_id": d,
            "ts": at(1.0),
            "kind": "turn",
            "utterance": "what's the weather",
            "asr_confidence": 0.9,
            "intent": "weather",
            "nlu_confidence": 0.8,
            "slots": {},
            "response": "sunny",
            "barge_in": False,
        },
        {
            "event_id": "e2",
            "device_id": d,
            "ts": at(11.0),
            "kind": "routine",
            "routine_id": "r1",
            "trigger": "motion",
            "action": "lights_on",
        },
        {
            "event_id": "e3",
            "device_id": d,
            "ts": at(14.0),
            "kind": "feedback",
            "target_event_id": "e2",
            "value": "false_trigger",
        },
        {
            "event_id": "e4",
            "device_id": d,
            "ts": at(20.0),
            "kind": "playback",
            "action": "start",
            "volume": 6,
        },
        {
            "event_id": "e5",
            "device_id": d,
            "ts": at(30.0),
            "kind": "routine",
            "routine_id": "r2",
            "trigger": "no_motion",
            "action": "lights_off",
        },
        {
            "event_id": "e6",
            "device_id": d,
            "ts": at(40.0),
            "kind": "turn",
            "utterance": "turn the lights back on",
            "asr_confidence": 1.0,
            "intent": "lights_on",
            "nlu_confidence": 0.9,
            "slots": {"room": "den"},
            "response": "ok",
            "barge_in": False,
        },
    ]


def write_raw_batch(
    raw_dir: Path,
    seed: int = 0,
    n_devices: int = 2,
    captures_per_device: int = 3,
    gap_s: float = 10.0,
    scale: float = 1.0,
    noise: float = 0.1,
) -> list[dict]:
    """A valid raw batch: captures every gap_s per device (2 s, 2 mics, 2 kHz). Returns the records."""
    rng = np.random.default_rng(seed)
    (raw_dir / "iq").mkdir(parents=True, exist_ok=True)
    devices = [f"dev-{k}" for k in range(n_devices)]
    records = []
    for i in range(captures_per_device):
        for d in devices:
            cid = f"{raw_dir.name}-{d}-{i:03d}"
            record = capture_record(cid, d, T0 + dt.timedelta(seconds=i * gap_s))
            np.save(raw_dir / record["file"], scale * random_iq(rng, noise=noise), allow_pickle=False)
            records.append(record)
    write_jsonl(raw_dir / "captures.jsonl", records)
    write_jsonl(raw_dir / "dialogue.jsonl", dialogue_events(devices))
    return records


@pytest.fixture(scope="session")
def params() -> dict:
    return load_params(REPO / "params.yaml")
