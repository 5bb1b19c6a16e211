"""Draws the turn page's plots from report.json's content (and, for the gallery, the curated frames).

One function per page section; each returns the PNG names it wrote under plots/ (none when the turn
has nothing to draw), so the page and report.md link exactly what exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.paths import Paths
from flows import plots
from flows.report_gallery import window_frames
from flows.report_sections import in_detector_order


def draw_all(report: dict, params: dict, paths: Paths, plots_dir: Path) -> dict[str, list[str]]:
    """section -> PNG file names (relative to plots_dir) of every plot of the page."""
    dpi = int(params["report"]["plot_dpi"])
    return {
        "det": _det(report, plots_dir, dpi),
        "false_triggers": _false_triggers(report, plots_dir, dpi),
        "gallery": _gallery(report, params, paths, plots_dir, dpi),
        "ingest": _ingest(report, plots_dir, dpi),
        "mbdp": _mbdp(report, params, plots_dir, dpi),
        "calibration": _calibration(report, plots_dir, dpi),
        "timings": _timings(report, plots_dir, dpi),
    }


def _det(report: dict, plots_dir: Path, dpi: int) -> list[str]:
    measured = in_detector_order({n: c for n, c in (report.get("det_curves") or {}).items() if c})
    if not measured:
        return []
    plots.det_curves(
        {n: c["curve"] for n, c in measured.items()},
        {n: c.get("operating_point") for n, c in measured.items()},
        plots_dir / "det.png",
        dpi,
    )
    return ["det.png"]


def _false_triggers(report: dict, plots_dir: Path, dpi: int) -> list[str]:
    rates = {
        det: {t: v.get("per_hour") for t, v in by_type.items() if v.get("per_hour") is not None}
        for det, by_type in in_detector_order(report.get("false_triggers_by_type") or {}).items()
        if by_type
    }
    if not rates:
        return []
    plots.grouped_bars(
        rates,
        plots_dir / "false_triggers_by_type.png",
        dpi,
        xlabel="false triggers per nuisance-hour (1/h)",
        title="False triggers by nuisance type (eval batch)",
    )
    return ["false_triggers_by_type.png"]


def _feature_axes(params: dict) -> tuple[np.ndarray, float, int]:
    """(velocity axis [V] in m/s, frame hop in s, feature channels per bin) of what the gallery draws."""
    from runtime.frontend import FrontendConfig, velocity_axis

    cfg = FrontendConfig.from_dict(params["frontend"])
    return velocity_axis(cfg), cfg.hop / cfg.baseband_fs_hz, cfg.n_channels


def _gallery(report: dict, params: dict, paths: Paths, plots_dir: Path, dpi: int) -> list[str]:
    gallery = report.get("gallery") or {}
    context = int(params["ingest"]["context_frames"])
    velocity, hop_s, n_channels = _feature_axes(params)
    written = []
    for strategy, rows in (gallery.get("picks") or {}).items():
        by_batch: dict[str, list[dict]] = {}
        for r in rows:
            by_batch.setdefault(r["batch_id"], []).append(r)
        tiles = []
        for batch, batch_rows in by_batch.items():
            ids = [r["window_id"] for r in batch_rows]
            frames = window_frames(paths.curated(batch), ids, context, n_channels)
            tiles += [
                plots.Tile(f, f"label {r['label'] or 'unlabelled'} · p={r['score']:.2f}")
                for f, r in zip(frames, batch_rows, strict=True)
            ]
        name = f"gallery_{strategy}.png"
        plots.spectrogram_gallery(tiles, velocity, hop_s, plots_dir / name, dpi, f"Picks: {strategy}")
        written.append(name)
    triggers = gallery.get("false_triggers") or []
    if triggers:
        ids = [r["window_id"] for r in triggers]
        frames = window_frames(paths.curated("eval"), ids, context, n_channels)
        tiles = [
            plots.Tile(
                f,
                f"{r.get('event_type') or '?'} · p={r['score']:.2f}"
                if "score" in r
                else f"{r.get('event_type') or '?'}",
            )
            for f, r in zip(frames, triggers, strict=True)
        ]
        plots.spectrogram_gallery(
            tiles,
            velocity,
            hop_s,
            plots_dir / "gallery_false_triggers.png",
            dpi,
            "Worst false triggers (eval)",
        )
        written.append("gallery_false_triggers.png")
    return written


def _ingest(report: dict, plots_dir: Path, dpi: int) -> list[str]:
    if not report.get("ingest"):
        return []
    plots.ingest_counts(report["ingest"], plots_dir / "ingest.png", dpi)
    return ["ingest.png"]


def _mbdp(report: dict, params: dict, plots_dir: Path, dpi: int) -> list[str]:
    xo = report.get("mbdp")
    if not xo:
        return []
    from runtime.mbdp import band_responses, design_crossover

    design = design_crossover(xo["crossovers_hz"], xo["fs_hz"])
    n = int(params["report"]["response_points"])
    freqs = np.geomspace(20.0, 0.5 * xo["fs_hz"] * 0.999, n)  # [F]
    bands = band_responses(design, freqs)  # [B, F] complex
    db = {f"band {b + 1}": 20 * np.log10(np.maximum(np.abs(h), 1e-12)) for b, h in enumerate(bands)}
    db["sum"] = 20 * np.log10(np.maximum(np.abs(bands.sum(axis=0)), 1e-12))
    plots.magnitude_response(
        freqs,
        db,
        xo["crossovers_hz"],
        plots_dir / "mbdp_crossover.png",
        dpi,
        f"MBDP crossover ({xo.get('profile')}, LR4, {xo['fs_hz'] / 1e3:.0f} kHz)",
    )
    return ["mbdp_crossover.png"]


def _calibration(report: dict, plots_dir: Path, dpi: int) -> list[str]:
    units = report.get("calibration_units") or []
    if not units:
        return []
    plots.scatter_units(units, plots_dir / "calibration.png", dpi)
    return ["calibration.png"]


def by_duration(seconds: dict[str, float]) -> dict[str, float]:
    """Stages longest first (the plot's and the page table's order)."""
    return dict(sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])))


def _timings(report: dict, plots_dir: Path, dpi: int) -> list[str]:
    if not report.get("stage_seconds"):
        return []
    plots.stage_seconds(by_duration(report["stage_seconds"]), plots_dir / "stage_timings.png", dpi)
    return ["stage_timings.png"]
