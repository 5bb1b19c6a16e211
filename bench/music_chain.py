"""Where music's effect on the detector is made or lost: one figure per link of the chain, on the
simulator's music (part of `flywheel bench mbdp`).

Each music batch bench/mbdp.py simulates (units playing raw, and through the MBDP's sensing mode) is
measured link by link, in the frames of captures where only music plays (truth: a music event and no
presence or nuisance), against the frames of the same units' empty gaps (nothing plays):
1. front-end without the canceller: the motion-band level (|v| >= motion_band_mps, mean linear power,
   dB re the carrier), i.e. the loudspeaker distortion that reaches the Doppler features at all;
2. front-end with the canceller (the detector's own front-end): the same level after the direct-path
   projection; the canceller's suppression on the simulator's music is 1 - 2;
3. above the floor: 2 minus the same figure in the empty gaps: what is left for the classifier to be
   fooled by (0 dB: nothing; the detector's strict motion sits some 10-30 dB over the floor);
4. the direct-path share (runtime.feature_channels "direct") of the motion band during music and in
   the gaps: how much of what remains still carries the loudspeaker's spatial signature.
Per playback volume, and for the MBDP batch against the raw one (what the sensing preset buys at the
front-end). The detector's own decisions during music are bench/mbdp.py's music_present_fraction_*.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from runtime.feature_channels import split_channels
from runtime.frontend import FrontendConfig, extract_features, frame_end_times, velocity_axis


def _truth_by_capture(truth_dir: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for line in (truth_dir / "events.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault(str(r["capture_id"]), []).append(r)
    return rows


def _frames_in(times: np.ndarray, events: list[dict], kind: str | None) -> np.ndarray:
    """Frames [T] bool covered by an event of type kind (None: by no event at all)."""
    covered = np.zeros(len(times), bool)
    for e in events:
        if kind is None or e["event_type"] == kind:
            covered |= (times >= float(e["t0_s"])) & (times <= float(e["t1_s"]))
    if kind is None:
        return ~covered
    others = [e for e in events if e["event_type"] != kind]
    for e in others:  # anything else in the frame: not a music-only frame
        covered &= ~((times >= float(e["t0_s"])) & (times <= float(e["t1_s"])))
    return covered


def _band_db(power_db: np.ndarray, band: np.ndarray) -> float:
    """Mean linear power over frames and band bins of power_db [F, V], in dB (nan for no frames)."""
    if not len(power_db):
        return float("nan")
    return float(10.0 * np.log10(np.mean(10.0 ** (power_db[:, band] / 10.0))))


def chain_figures(
    raw_dir: Path, truth_dir: Path, frontend: dict, motion_band_mps: float, max_captures: int
) -> dict:
    """The chain's figures (module docstring) of one simulated music batch, per playback volume."""
    base = FrontendConfig.from_dict(frontend)
    with_canceller = dataclasses.replace(base, channels=("power", "direct"))
    without = dataclasses.replace(base, channels=("power",), canceller=False)
    band = np.abs(velocity_axis(base)) >= motion_band_mps
    truth = _truth_by_capture(truth_dir)
    records = [json.loads(x) for x in (raw_dir / "captures.jsonl").read_text().splitlines() if x.strip()]
    per_volume: dict[str, dict[str, list]] = {}
    for r in records[:max_captures]:
        iq = np.load(raw_dir / str(r["file"]), allow_pickle=False)
        fs, carrier = float(r["fs_hz"]), float(r["carrier_hz"])
        on = split_channels(extract_features(iq, fs, carrier, with_canceller), 2)  # [F, V, 2]
        off = extract_features(iq, fs, carrier, without)  # [F, V]
        times = frame_end_times(len(off), base)
        events = truth.get(str(r["capture_id"]), [])
        volume = f"{float(r['playback_volume']):g}"
        for kind, key in (("music", "music"), (None, "gap")):
            frames = _frames_in(times, events, kind)
            frames[: int(np.ceil(2 * base.clutter_tau_s / (base.hop / base.baseband_fs_hz)))] = False
            if not frames.any():
                continue
            slot = per_volume.setdefault(volume if key == "music" else "gap", {})
            slot.setdefault("off", []).append(off[frames])
            slot.setdefault("on", []).append(on[frames, :, 0])
            slot.setdefault("share", []).append(on[frames][:, band, 1].ravel())
    out: dict = {}
    gap = per_volume.get("gap")
    gap_on = _band_db(np.concatenate(gap["on"]), band) if gap else float("nan")
    for volume, slot in sorted(per_volume.items()):
        off_db = _band_db(np.concatenate(slot["off"]), band)
        on_db = _band_db(np.concatenate(slot["on"]), band)
        out[volume] = {
            "frames": int(sum(len(x) for x in slot["on"])),
            "motion_band_db_without_canceller": off_db,
            "motion_band_db_with_canceller": on_db,
            "canceller_suppression_db": off_db - on_db,
            "above_gap_floor_db": on_db - gap_on,
            "direct_share_median_db": float(np.median(np.concatenate(slot["share"]))),
        }
    return out
