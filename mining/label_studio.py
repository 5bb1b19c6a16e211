"""Label Studio round trip: export picks as tasks with a spectrogram PNG each, import completed annotations.

Export: `tasks.json` (a list of tasks, Label Studio's import format) and `images/<n>.png`, each task
{"id", "data": {"image", "window_id", "batch_id", "strategy", "device_id", "t_end_s"}}. The labelling
config (`label_config.xml`) offers one Choices control named `presence` over runtime.labels.CLASSES.
Import: Label Studio's JSON export (a list of tasks with "annotations", each with "result" items
{"from_name", "type": "choices", "value": {"choices": [...]}}) → a label table with source
"label_studio" and the annotator's confidence. Every validation error names the file and the field.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl

from common.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from mining.config import LabelStudioConfig
from mining.labels import LABEL_SCHEMA
from mining.pool import gather_windows, load_windows_table, open_frames
from runtime.feature_channels import power_channel
from runtime.frontend import FrontendConfig
from runtime.labels import CLASSES

CONTROL_NAME = "presence"
SOURCE = "label_studio"


class LabelStudioError(ValueError):
    """A Label Studio export does not follow the expected format."""


def label_config() -> str:
    """Label Studio labelling config: the spectrogram image and one single-choice `presence` control."""
    choices = "\n".join(f'    <Choice value="{c}"/>' for c in CLASSES)
    return (
        "<View>\n"
        '  <Image name="spectrogram" value="$image"/>\n'
        f'  <Choices name="{CONTROL_NAME}" toName="spectrogram" choice="single" required="true">\n'
        f"{choices}\n  </Choices>\n</View>\n"
    )


def spectrogram_png(window: np.ndarray, frame_hop_s: float, v_max_mps: float, size_px, dpi: int) -> bytes:
    """PNG of one window [context, V] (dB): time across, radial velocity up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    extent = (0.0, window.shape[0] * frame_hop_s, -v_max_mps, v_max_mps)
    ax.imshow(window.T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("radial velocity (m/s)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def export_tasks(
    picks: pl.DataFrame,
    curated_dir: str | Path,
    out_dir: str | Path,
    ls: LabelStudioConfig,
    fe: FrontendConfig,
    context: int,
) -> Path:
    """Write out_dir/{tasks.json, label_config.xml, images/*.png} for the picks; return tasks.json.

    The windows are `context` frames (ingest.context_frames) of the front-end fe."""
    out_dir = Path(out_dir)
    table = load_windows_table(curated_dir)
    duplicated = picks.filter(pl.col("window_id").is_duplicated())["window_id"].unique().to_list()
    if duplicated:  # one task per window: a second task would be a second paid label for the same window
        raise ValueError(f"picks: window_id repeated, e.g. {sorted(duplicated)[:5]}")
    rows = picks.select("window_id", *[c for c in ("strategy",) if c in picks.columns]).join(
        table.select("window_id", "end_row", "batch_id", "device_id", "t_end_s"),
        on="window_id",
        how="left",
        maintain_order="left",  # task n is pick n (polars does not promise join order otherwise)
    )
    if rows["end_row"].null_count():
        missing = rows.filter(pl.col("end_row").is_null())["window_id"].to_list()[:5]
        raise ValueError(f"{curated_dir}/windows.parquet: picks not in the batch, e.g. {missing}")
    windows = gather_windows(open_frames(curated_dir), rows["end_row"].to_numpy(), context)  # [N, T, V*C]
    windows = power_channel(windows, fe.n_channels)  # [N, T, V]: annotators see the Doppler power
    hop_s = fe.hop / fe.baseband_fs_hz
    tasks = []
    for n, (row, window) in enumerate(zip(rows.iter_rows(named=True), windows, strict=True)):
        image = f"images/{n:06d}.png"
        png = spectrogram_png(window, hop_s, fe.v_max_mps, ls.image_px, ls.dpi)
        atomic_write_bytes(out_dir / image, png)
        data = {"image": image, **{k: row[k] for k in ("window_id", "batch_id", "device_id", "t_end_s")}}
        data["strategy"] = row.get("strategy")
        tasks.append({"id": n + 1, "data": data})
    atomic_write_text(out_dir / "label_config.xml", label_config())
    atomic_write_json(out_dir / "tasks.json", tasks)
    return out_dir / "tasks.json"


def _field(obj, key: str, kind: type | tuple, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise LabelStudioError(f"{where}: missing field {key!r}")
    if not isinstance(obj[key], kind):
        raise LabelStudioError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {obj[key]!r}")
    return obj[key]


def _choice(annotation: dict, where: str) -> str:
    """The one `presence` choice of a submitted annotation.

    Our labelling config has a single control, so a result from any other control means the export
    came from another project's config: refused rather than silently dropped.
    """
    results = _field(annotation, "result", list, where)
    if not results:
        raise LabelStudioError(f"{where}.result: empty (no {CONTROL_NAME!r} choice)")
    choice = None
    for r, result in enumerate(results):
        at = f"{where}.result[{r}]"
        from_name = _field(result, "from_name", str, at)
        if from_name != CONTROL_NAME:
            raise LabelStudioError(f"{at}.from_name: expected {CONTROL_NAME!r}, got {from_name!r}")
        choices = _field(_field(result, "value", dict, at), "choices", list, at + ".value")
        if len(choices) != 1 or choices[0] not in CLASSES:
            raise LabelStudioError(f"{at}.value.choices: expected one of {list(CLASSES)}, got {choices}")
        if choice is not None and choices[0] != choice:
            raise LabelStudioError(f"{at}.value.choices: {choices[0]!r} contradicts {choice!r} before it")
        choice = choices[0]
    return choice


def import_annotations(export_path: str | Path, confidence: float = 1.0) -> pl.DataFrame:
    """Completed Label Studio JSON export → label table (source "label_studio").

    Per task the latest (last listed) non-cancelled annotation wins; tasks nobody labelled (no
    annotation, or only cancelled/skipped ones) are left out. Raises LabelStudioError naming the file
    and the field that is wrong: a submitted annotation without result, a result from another control
    than `presence`, a choice outside runtime.labels.CLASSES, a window or task id exported twice.
    """
    path = Path(export_path)
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"confidence must be in [0, 1], got {confidence}")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LabelStudioError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(tasks, list):
        raise LabelStudioError(f"{path}: expected a list of tasks, got {type(tasks).__name__}")
    rows = []
    seen_ids: dict[object, int] = {}
    seen_windows: dict[str, int] = {}
    for t, task in enumerate(tasks):
        where = f"{path}: [{t}]"
        data = _field(task, "data", dict, where)
        window_id = _field(data, "window_id", str, where + ".data")
        if window_id in seen_windows:
            first = seen_windows[window_id]
            raise LabelStudioError(
                f"{where}.data.window_id: duplicate task for {window_id!r} (first at [{first}])"
            )
        seen_windows[window_id] = t
        task_id = task.get("id")
        if task_id is not None:
            if task_id in seen_ids:
                raise LabelStudioError(
                    f"{where}.id: duplicate task id {task_id!r} (first at [{seen_ids[task_id]}])"
                )
            seen_ids[task_id] = t
        batch_id = data.get("batch_id")
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise LabelStudioError(f"{where}.annotations: expected list")
        label = None
        for a, annotation in enumerate(annotations):
            if isinstance(annotation, dict) and annotation.get("was_cancelled"):
                continue
            label = _choice(annotation, f"{where}.annotations[{a}]")  # the latest submitted one wins
        if label is None:
            continue
        rows.append(
            {
                "window_id": window_id,
                "batch_id": None if batch_id is None else str(batch_id),
                "label": CLASSES.index(label),
                "source": SOURCE,
                "confidence": float(confidence),
                "strategy": data.get("strategy") or SOURCE,
            }
        )
    return pl.DataFrame(rows, schema=LABEL_SCHEMA)
