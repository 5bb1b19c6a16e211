"""The report's gallery: Doppler spectrograms of the mined picks and of the eval's worst false triggers.

Picks come from the mine stage (picks.parquet: strategy and the mining model's p_present) with the
label the field labelling gave them; false triggers from the shipped detector's episode rows
(kind "false_trigger"), each drawn from the eval window of that capture nearest its time and ranked
by the shipped model's score of that window (the most confident false triggers first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from runtime.labels import CLASSES


def pick_rows(picks_file: Path, labels_file: Path, per_strategy: int) -> dict[str, list[dict]]:
    """strategy -> its first `per_strategy` picks (selection order): window, batch, label, score."""
    if not picks_file.exists():
        return {}
    picks = pl.read_parquet(picks_file)
    labels = (
        pl.read_parquet(labels_file, columns=["window_id", "label", "source"])
        if labels_file.exists()
        else pl.DataFrame(schema={"window_id": pl.String, "label": pl.Int64, "source": pl.String})
    )
    joined = picks.join(labels, on="window_id", how="left", maintain_order="left")
    out: dict[str, list[dict]] = {}
    for row in joined.iter_rows(named=True):
        group = out.setdefault(row["strategy"], [])
        if len(group) < per_strategy:
            group.append(
                {
                    "window_id": row["window_id"],
                    "batch_id": row["batch_id"],
                    "label": None if row["label"] is None else CLASSES[int(row["label"])],
                    "label_source": row["source"],
                    "score": float(row["p_present"]),
                }
            )
    return dict(sorted(out.items()))


def false_trigger_rows(
    episodes: list[dict],
    windows: pl.DataFrame,
    model_file: Path | None,
    curated_dir: Path,
    context: int,
    n: int,
) -> list[dict]:
    """The n highest-scoring false triggers: episode row + nearest eval window and the model's p_present."""
    triggers = [e for e in episodes if e.get("kind") == "false_trigger"]
    if not triggers:
        return []
    table = windows.select("window_id", "capture_id", "t_end_s")
    rows = []
    for e in triggers:
        same = table.filter(pl.col("capture_id") == e["capture_id"])
        if same.height == 0:
            raise ValueError(
                f"{curated_dir / 'windows.parquet'}: no window of capture_id {e['capture_id']!r} "
                "named by an episode row"
            )
        nearest = same.row(int(np.argmin(np.abs(same["t_end_s"].to_numpy() - float(e["t_s"])))), named=True)
        rows.append({**e, "window_id": nearest["window_id"], "window_t_end_s": nearest["t_end_s"]})
    if model_file is not None and model_file.exists():
        from mining.scoring import score_windows

        scores, _ = score_windows(model_file, curated_dir, pl.Series([r["window_id"] for r in rows]), context)
        for r, s in zip(rows, scores, strict=True):
            r["score"] = float(s)
    # most confident first; ties (or no model) in episode order
    order = sorted(range(len(rows)), key=lambda i: (-(rows[i].get("score") or 0.0), i))
    return [rows[i] for i in order[:n]]


def window_frames(curated_dir: Path, window_ids: list[str], context: int, n_channels: int) -> np.ndarray:
    """[N, context, V] power frames (the front-end's power channel of its n_channels) of the given
    windows of one curated batch, in that order."""
    from mining.pool import gather_windows, load_windows_table, open_frames
    from runtime.feature_channels import power_channel

    table = load_windows_table(curated_dir).select("window_id", "end_row")
    rows = pl.DataFrame({"window_id": window_ids}).join(
        table, on="window_id", how="left", maintain_order="left"
    )
    missing = rows.filter(pl.col("end_row").is_null())["window_id"].to_list()
    if missing:
        raise ValueError(f"{curated_dir / 'windows.parquet'}: window_id not found: {missing[:3]}")
    frames = gather_windows(open_frames(curated_dir), rows["end_row"].to_numpy(), context)
    return power_channel(frames, n_channels)
