"""Drift of a curated batch against a reference batch, reported as warnings (never failures).

Each curated batch keeps a small profile.json: per-bin feature mean/std, and per device the rate
per hour of captures by trigger and of dialogue events by kind. Drift compares two profiles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from common.io import read_json
from ingest.config import DriftConfig


def device_rates(captures: pl.DataFrame, dialogue_events: pl.DataFrame) -> dict[str, dict]:
    """{device: {"hours": h, "counts": {"trigger:<t>" | "kind:<k>": n}}} over the device's observed span."""
    spans = (
        pl.concat(
            [
                captures.select(
                    "device_id",
                    pl.col("t_start_utc").alias("t0"),
                    (pl.col("t_start_utc") + pl.duration(seconds=pl.col("duration_s"))).alias("t1"),
                ),
                dialogue_events.select("device_id", pl.col("ts").alias("t0"), pl.col("ts").alias("t1")),
            ]
        )
        .group_by("device_id")
        .agg((pl.col("t1").max() - pl.col("t0").min()).dt.total_seconds().alias("span_s"))
    )
    counts = (
        pl.concat(
            [
                captures.select("device_id", ("trigger:" + pl.col("trigger")).alias("key")),
                dialogue_events.select("device_id", ("kind:" + pl.col("kind")).alias("key")),
            ]
        )
        .group_by("device_id", "key")
        .len()
    )
    out: dict[str, dict] = {}
    for row in spans.iter_rows(named=True):
        out[row["device_id"]] = {"hours": max(float(row["span_s"] or 0.0), 1.0) / 3600.0, "counts": {}}
    for row in counts.iter_rows(named=True):
        out[row["device_id"]]["counts"][row["key"]] = int(row["len"])
    return out


def build_profile(bin_mean: np.ndarray, bin_std: np.ndarray, n_frames: int, rates: dict) -> dict:
    return {
        "n_frames": int(n_frames),
        "bin_mean": bin_mean.tolist(),
        "bin_std": bin_std.tolist(),
        "devices": rates,
    }


def compare_profiles(current: dict, reference: dict, cfg: DriftConfig) -> list[str]:
    """Human-readable warnings where the current batch departs from the reference."""
    warnings = []
    if current["n_frames"] and reference["n_frames"]:
        cur, ref = np.asarray(current["bin_mean"]), np.asarray(reference["bin_mean"])
        ref_std = np.maximum(np.asarray(reference["bin_std"]), 1e-6)
        if cur.shape == ref.shape:
            level_z = abs(cur.mean() - ref.mean()) / ref_std.mean()
            if level_z > cfg.feature_z_max:
                warnings.append(
                    f"feature level moved {cur.mean() - ref.mean():+.2f} dB ({level_z:.1f} reference std)"
                )
            bin_z = np.abs(cur - ref) / ref_std
            bad = np.flatnonzero(bin_z > cfg.feature_z_max)
            if bad.size:
                warnings.append(
                    f"feature mean moved > {cfg.feature_z_max} std in {bad.size} velocity bins "
                    f"(worst bin {int(bin_z.argmax())}: {bin_z.max():.1f} std)"
                )
        else:
            warnings.append(f"feature shape changed: {ref.shape} → {cur.shape}")
    for device in sorted(set(current["devices"]) & set(reference["devices"])):
        cur, ref = current["devices"][device], reference["devices"][device]
        for key in sorted(set(cur["counts"]) | set(ref["counts"])):
            n_cur, n_ref = cur["counts"].get(key, 0), ref["counts"].get(key, 0)
            if max(n_cur, n_ref) < cfg.min_events:
                continue
            rate_cur, rate_ref = n_cur / cur["hours"], n_ref / ref["hours"]
            ratio = (rate_cur + 1e-9) / (rate_ref + 1e-9)
            if ratio > cfg.rate_ratio_max or ratio < 1.0 / cfg.rate_ratio_max:
                warnings.append(f"{device}: {key} rate {rate_cur:.2f}/h vs {rate_ref:.2f}/h in the reference")
    return warnings


def pick_reference(curated_root: Path, batch_id: str, cfg: DriftConfig) -> Path | None:
    """The reference batch folder: params drift.reference_batch, else the first other batch by name."""
    if cfg.reference_batch:
        path = curated_root / cfg.reference_batch
        return path if (path / "profile.json").exists() and path.name != batch_id else None
    candidates = sorted(
        p
        for p in curated_root.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in ("quarantine", batch_id)
        and (p / "profile.json").exists()
    )
    return candidates[0] if candidates else None


def drift_warnings(
    profile: dict, curated_root: Path, batch_id: str, cfg: DriftConfig
) -> tuple[str | None, list[str]]:
    reference = pick_reference(curated_root, batch_id, cfg)
    if reference is None:
        return None, []
    return reference.name, compare_profiles(profile, read_json(reference / "profile.json"), cfg)
