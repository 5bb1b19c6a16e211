"""The report's plots: one matplotlib style (Agg), axes labelled with units, sized for 100 % zoom.

Every function takes plain data (dicts, lists, arrays) and writes one PNG atomically; none reads the
data folder, so the same functions draw a turn's page, a comparison page and the tests' fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.io import atomic_path

# One look for every plot: a page of them reads as one document.
STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.grid": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "font.family": "DejaVu Sans",
    "axes.prop_cycle": None,  # set below from PALETTE
}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
SPECTROGRAM_CMAP = "magma"


@dataclass(frozen=True)
class Tile:
    """One Doppler spectrogram of a gallery: frames [T, V] (dB) and the caption drawn above it."""

    frames: np.ndarray  # [T, V] float32
    caption: str


@contextmanager
def figure(
    out_png: Path,
    width_in: float,
    height_in: float,
    dpi: int,
    ncols: int = 1,
    layout: str | None = "constrained",
) -> Iterator:
    """(fig, axes) in the report style; on exit the figure is saved atomically to out_png and closed.

    layout=None leaves placement to the caller (cheaper than the constrained solver for many axes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    style = {**STYLE, "axes.prop_cycle": cycler(color=list(PALETTE))}
    with plt.rc_context(style):
        fig, axes = plt.subplots(1, ncols, figsize=(width_in, height_in), squeeze=False, layout=layout)
        try:
            yield fig, axes[0]
            Path(out_png).parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out_png, suffix=".png") as tmp:
                # no timestamps in the PNG: same inputs, same bytes
                fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
        finally:
            plt.close(fig)


def det_curves(
    curves: Mapping[str, Sequence[Mapping]],
    operating_points: Mapping[str, Mapping | None],
    out_png: Path,
    dpi: int,
) -> None:
    """Detection-error trade-off: missed entries (%) against false triggers per empty hour, per detector.

    curves: detector -> points {"false_triggers_per_empty_hour", "missed_entry_rate"} (any order);
    operating_points: detector -> the point it runs at (drawn as a marker), or None.
    """
    with figure(out_png, 7.5, 4.8, dpi) as (_, (ax,)):
        floor = _positive_floor(
            [p["false_triggers_per_empty_hour"] for pts in curves.values() for p in pts]
            + [op["false_triggers_per_empty_hour"] for op in operating_points.values() if op]
        )
        for i, (name, points) in enumerate(curves.items()):
            colour = PALETTE[i % len(PALETTE)]
            pts = sorted(points, key=lambda p: p["false_triggers_per_empty_hour"])
            x = [max(p["false_triggers_per_empty_hour"], floor) for p in pts]
            y = [100.0 * p["missed_entry_rate"] for p in pts]
            ax.plot(x, y, "-", color=colour, label=name, linewidth=1.8)
            op = operating_points.get(name)
            if op:
                ax.plot(
                    max(op["false_triggers_per_empty_hour"], floor),
                    100.0 * op["missed_entry_rate"],
                    "o",
                    color=colour,
                    markersize=9,
                    markeredgecolor="black",
                    label=f"{name} operating point",
                )
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.5, 1, 2 rather than 5×10⁻¹
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=8)
        ax.set_xlabel("false triggers per empty hour (1/h, log scale)")
        ax.set_ylabel("missed entries (%)")
        ax.set_ylim(-2, 102)
        ax.set_title("Detection-error trade-off on the eval batch")
        ax.legend(loc="upper right")


def _positive_floor(values: Sequence[float]) -> float:
    """Where a zero rate is drawn on a log axis: a decade below the smallest positive rate."""
    positive = [v for v in values if v and v > 0]
    return (min(positive) if positive else 1.0) / 10.0


def grouped_bars(
    rates: Mapping[str, Mapping[str, float]], out_png: Path, dpi: int, xlabel: str, title: str
) -> None:
    """Horizontal bars, one group per category, one bar per series: rates[series][category]."""
    categories = sorted({c for per in rates.values() for c in per})
    series = list(rates)
    height = max(3.0, 0.45 * len(categories) * max(1, len(series)) ** 0.5 + 1.2)
    with figure(out_png, 7.5, height, dpi) as (_, (ax,)):
        bar = 0.8 / max(1, len(series))
        y = np.arange(len(categories))  # [C]
        for i, name in enumerate(series):
            values = [rates[name].get(c) or 0.0 for c in categories]
            ax.barh(y + i * bar, values, bar, label=name)
        ax.set_yticks(y + 0.4 - bar / 2, categories)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        if series:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the bars


def spectrogram_gallery(
    tiles: Sequence[Tile], velocity_mps: np.ndarray, frame_hop_s: float, out_png: Path, dpi: int, title: str
) -> None:
    """A row of Doppler spectrograms (time × radial velocity) on one colour scale, one caption each."""
    n = max(1, len(tiles))
    width = 2.6 * n + 1.7
    with figure(out_png, width, 3.4, dpi, ncols=n, layout=None) as (fig, axes):
        # fixed placement: 0.9 in on the left for the velocity axis, 1.4 in on the right for the colour bar
        left, right = 0.9 / width, 1 - 1.4 / width
        fig.subplots_adjust(left=left, right=right, bottom=0.2, top=0.8, wspace=0.12)
        stack = np.concatenate([t.frames.ravel() for t in tiles]) if tiles else np.zeros(1)
        lo, hi = np.percentile(stack, [2, 99.5])
        image = None
        for ax, tile in zip(axes, tiles, strict=False):
            t_len = tile.frames.shape[0] * frame_hop_s
            image = ax.imshow(
                tile.frames.T,  # [V, T]: velocity up, time right
                origin="lower",
                aspect="auto",
                cmap=SPECTROGRAM_CMAP,
                vmin=lo,
                vmax=hi,
                extent=(-t_len, 0.0, float(velocity_mps[0]), float(velocity_mps[-1])),
                interpolation="nearest",
            )
            ax.set_title(tile.caption, fontsize=9, fontweight="normal")
            ax.set_xticks([-t_len, -t_len / 2, 0.0], [f"{-t_len:.1f}", f"{-t_len / 2:.1f}", "0"])
            ax.set_xlabel("time to window end (s)", fontsize=9)
            ax.grid(False)
        axes[0].set_ylabel("radial velocity (m/s)")
        for ax in axes[1:]:
            ax.tick_params(labelleft=False)
        if image is not None:
            cax = fig.add_axes((right + 0.15 / width, 0.2, 0.12 / width, 0.6))
            fig.colorbar(image, cax=cax, label="Doppler power (dB)")
        fig.suptitle(title, fontsize=12, fontweight="bold")


def magnitude_response(
    freqs_hz: np.ndarray,
    responses_db: Mapping[str, np.ndarray],
    markers_hz: Sequence[float],
    out_png: Path,
    dpi: int,
    title: str,
) -> None:
    """Magnitude responses (dB) on a log frequency axis; vertical lines at markers_hz (crossovers)."""
    with figure(out_png, 7.5, 4.2, dpi) as (_, (ax,)):
        for name, db in responses_db.items():
            ax.semilogx(freqs_hz, db, label=name, linewidth=1.6)
        for f in markers_hz:
            ax.axvline(f, color="#7f7f7f", linestyle=":", linewidth=1)
        ax.set_ylim(-48, 6)
        ax.set_xlim(float(freqs_hz[0]), float(freqs_hz[-1]))
        ax.set_xlabel("frequency (Hz, log scale)")
        ax.set_ylabel("magnitude (dB)")
        ax.set_title(title)
        ax.legend(loc="lower left", ncols=3)


def scatter_units(units: Sequence[Mapping], out_png: Path, dpi: int) -> None:
    """Calibration per unit: chosen carrier (kHz) against emission level (dB FS), one labelled dot each."""
    with figure(out_png, 7.5, 3.8, dpi) as (_, (ax,)):
        for u in units:
            ax.plot(u["carrier_hz"] / 1e3, u["emission_db"], "o", color=PALETTE[0], markersize=7)
            ax.annotate(
                u["device"],
                (u["carrier_hz"] / 1e3, u["emission_db"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel("chosen carrier (kHz)")
        ax.set_ylabel("emission level (dB FS)")
        ax.set_title("Calibration per unit")


def stage_seconds(seconds: Mapping[str, float], out_png: Path, dpi: int) -> None:
    """Horizontal bars of stage wall time in run order."""
    names = list(seconds)
    with figure(out_png, 7.5, max(2.5, 0.28 * len(names) + 1.0), dpi) as (_, (ax,)):
        ax.barh(np.arange(len(names)), [seconds[n] for n in names], color=PALETTE[0])
        ax.set_yticks(np.arange(len(names)), names, fontsize=9)
        ax.invert_yaxis()
        ax.set_xlabel("wall time (s)")
        ax.set_title("Stage timings")


def ingest_counts(batches: Mapping[str, Mapping[str, int | None]], out_png: Path, dpi: int) -> None:
    """Per batch: captures received, ingested, quarantined and already present (grouped bars)."""
    kinds = ("received", "ingested", "quarantined", "already_present")
    names = list(batches)
    with figure(out_png, 7.5, 3.6, dpi) as (_, (ax,)):
        bar = 0.8 / len(kinds)
        x = np.arange(len(names))
        for i, kind in enumerate(kinds):
            ax.bar(x + i * bar, [batches[b].get(kind) or 0 for b in names], bar, label=kind.replace("_", " "))
        ax.set_xticks(x + 0.4 - bar / 2, names)
        ax.set_xlabel("batch")
        ax.set_ylabel("captures")
        ax.set_title("Ingest per batch")
        ax.legend(loc="upper right", ncols=2)
