"""bench/music_chain.py on a synthetic raw batch: the canceller's link is measured where it holds (the
distortion through the direct path only) and where the room's delayed copies limit it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.music_chain import chain_figures
from common.params import load_params
from runtime.synthetic import (
    ArrayGeometry,
    BassMusic,
    StaticPath,
    multipath_playback,
    room_paths,
    static_channel,
)

FS, CARRIER, C, SECONDS = 2000.0, 40000.0, 343.0, 10.0


def _batch(tmp: Path, room_db: float | None) -> tuple[Path, Path]:
    """Two captures: music at full excursion (truth: music all along), then the silent room."""
    rng = np.random.default_rng(3)
    geometry = ArrayGeometry()
    n = int(FS * SECONDS)
    paths = [StaticPath(static_channel(geometry, CARRIER, C, rng), 0.0)]
    if room_db is not None:
        paths += room_paths(geometry, CARRIER, C, rng, 8, room_db)
    music = BassMusic.random(1.0e-3, rng)
    noise = 1e-5 * (rng.normal(size=(4, n)) + 1j * rng.normal(size=(4, n)))
    playing = multipath_playback(paths, music, n, FS, CARRIER, C) + noise
    silent = multipath_playback(paths, BassMusic.random(0.0, rng), n, FS, CARRIER, C) + noise
    raw, truth = tmp / "raw", tmp / "truth"
    (raw / "iq").mkdir(parents=True)
    truth.mkdir()
    records = []
    for i, (iq, volume) in enumerate(((playing, 10.0), (silent, 0.0))):
        np.save(raw / "iq" / f"c{i}.npy", iq.astype(np.complex64), allow_pickle=False)
        records.append(
            {"capture_id": f"c{i}", "file": f"iq/c{i}.npy", "fs_hz": FS, "carrier_hz": CARRIER,
             "playback_volume": volume}
        )  # fmt: skip
    (raw / "captures.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    music_row = {"capture_id": "c0", "t0_s": 0.0, "t1_s": SECONDS, "event_type": "music"}
    (truth / "events.jsonl").write_text(json.dumps(music_row) + "\n")
    return raw, truth


def test_the_canceller_link_holds_on_the_direct_path_and_the_room_limits_it(tmp_path) -> None:
    frontend = load_params()["frontend"]
    direct_only = chain_figures(*_batch(tmp_path / "direct", None), frontend, 0.3, 10)
    with_room = chain_figures(*_batch(tmp_path / "room", -20.0), frontend, 0.3, 10)
    assert set(direct_only) == {"10", "gap"} and direct_only["10"]["frames"] > 200
    # distortion through the direct path alone: projected out to the floor, and all of it along u
    assert direct_only["10"]["canceller_suppression_db"] > 25.0
    assert direct_only["10"]["direct_share_median_db"] > -0.5
    assert abs(direct_only["gap"]["canceller_suppression_db"]) < 1.0  # nothing to cancel in the gap
    # the room's delayed copies arrive from elsewhere: they limit what the projection can remove
    assert with_room["10"]["canceller_suppression_db"] < direct_only["10"]["canceller_suppression_db"] - 5
    assert with_room["10"]["above_gap_floor_db"] > direct_only["10"]["above_gap_floor_db"] + 5
