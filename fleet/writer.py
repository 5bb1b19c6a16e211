"""Write a batch in the raw log contract (DESIGN.md): captures.jsonl, iq/*.npy, dialogue.jsonl; and truth.

Both folders are built under temporary names and swapped in at the end (common.io.atomic_dir),
so a crashed run never leaves half a batch; arrays are streamed to disk capture by capture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from common.io import atomic_dir, atomic_write_jsonl


class BatchWriter:
    def __init__(self, raw: Path, truth: Path):
        self.raw, self.truth = raw, truth
        self.captures: list[dict] = []
        self.events: list[dict] = []
        self.dialogue: list[dict] = []

    def add_dialogue(self, rows: list[dict]) -> None:
        self.dialogue += rows

    def close(self) -> None:
        atomic_write_jsonl(self.raw / "captures.jsonl", self.captures)
        atomic_write_jsonl(self.raw / "dialogue.jsonl", self.dialogue)
        atomic_write_jsonl(self.truth / "events.jsonl", self.events)


@contextlib.contextmanager
def open_batch(raw_dir: str | Path, truth_dir: str | Path) -> Iterator[BatchWriter]:
    """BatchWriter over temp folders that replace raw_dir and truth_dir only on success."""
    with atomic_dir(raw_dir) as raw_tmp, atomic_dir(truth_dir) as truth_tmp:
        (raw_tmp / "iq").mkdir()
        writer = BatchWriter(raw_tmp, truth_tmp)
        yield writer
        writer.close()


def truth_rows(
    capture_id: str, events, t0: float, duration: float, episode_ids: dict[int, str] | None = None
) -> list[dict]:
    """Capture-relative truth intervals of the events overlapping [t0, t0 + duration).

    An event is cut at the capture's edges (t0_s, t1_s); its episode (`episode_id`, unique in the batch,
    and the whole event's extent `episode_t0_s`, `episode_t1_s`, seconds from this capture's start, so
    before 0 or past the duration when it runs over the edges) lets evaluation rebuild it across
    back-to-back captures. episode_ids maps id(event) to its episode id (None: no episode columns)."""
    rows = []
    for e in events:
        a = round(max(e.t0 - t0, 0.0), 3)
        b = round(min(e.t1 - t0, duration), 3)
        if b - a >= 0.01:
            row = {
                "capture_id": capture_id,
                "t0_s": a,
                "t1_s": b,
                "event_type": e.event_type,
                "is_presence": e.is_presence,
                "motion_class": e.motion_class,
            }
            if episode_ids is not None:
                row["episode_id"] = episode_ids[id(e)]
                row["episode_t0_s"] = round(e.t0 - t0, 3)
                row["episode_t1_s"] = round(e.t1 - t0, 3)
            rows.append(row)
    return rows
