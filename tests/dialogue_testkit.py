"""Hand-written dialogue logs for the self-learning tests: rows in the raw contract, by seconds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


class Script:
    """Builds one batch's dialogue.jsonl rows; times in seconds from T0."""

    def __init__(self):
        self.rows: list[dict] = []

    def _add(self, device: str, t: float, kind: str, **fields) -> str:
        eid = f"{device}-e{len(self.rows):05d}"
        ts = (T0 + dt.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.rows.append({"event_id": eid, "device_id": device, "ts": ts, "kind": kind, **fields})
        return eid

    def turn(self, device, t, utterance, asr=0.95, nlu=0.9, response="Okay.", barge_in=False, intent="x"):
        return self._add(
            device,
            t,
            "turn",
            utterance=utterance,
            asr_confidence=asr,
            intent=intent,
            nlu_confidence=nlu,
            slots={},
            response=response,
            barge_in=barge_in,
        )

    def motion(self, device, t):
        return self._add(
            device, t, "routine", routine_id="motion_lights", trigger="motion", action="lights_on"
        )

    def no_motion(self, device, t):
        return self._add(
            device, t, "routine", routine_id="no_motion_lights", trigger="no_motion", action="lights_off"
        )

    def feedback(self, device, t, target, value="false_trigger"):
        return self._add(device, t, "feedback", target_event_id=target, value=value)

    def write(self, raw_dir: Path, devices_hours: dict[str, float] | None = None) -> Path:
        """dialogue.jsonl, plus captures.jsonl rows spanning each device's period (files not needed here)."""
        raw_dir.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.rows, key=lambda r: r["ts"])
        (raw_dir / "dialogue.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if devices_hours:
            caps = [
                {"capture_id": f"{d}-c", "device_id": d, "t_start": T0.isoformat(), "duration_s": h * 3600.0}
                for d, h in devices_hours.items()
            ]
            (raw_dir / "captures.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
        return raw_dir

    def tables(self, batch_id: str = "b"):
        """(turns, routines, feedback) tables as ingest.dialogue builds them."""
        import tempfile

        from ingest.dialogue import read_dialogue
        from ingest.quarantine import QuarantineLog

        with tempfile.TemporaryDirectory() as tmp:
            raw = self.write(Path(tmp))
            devices = {r["device_id"] for r in self.rows}
            t = read_dialogue(raw, batch_id, devices, QuarantineLog(batch_id, raw, 0))
        assert t.quarantined == 0
        return t.turns, t.routines, t.feedback


def learning():
    from common.params import load_params
    from fleet.config import REPO_PARAMS
    from mining.failure_points import learning_params

    return learning_params(load_params(REPO_PARAMS))


def frame(rows, schema) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")
