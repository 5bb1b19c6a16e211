"""The ingest stage: raw batch folder → curated batch folder (docs/CONTRACTS.md) + quarantine.

Streams captures one at a time (memory does not grow with the batch), builds every table in a
staging folder and swaps it in atomically (common.io.atomic_dir): a crash leaves no partial tables.
Idempotent: captures already in any curated batch are skipped and counted as already_present, and
received = ingested + quarantined + already_present always holds (counted in captures).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from common.io import atomic_dir, atomic_write_json, atomic_write_parquet, read_json
from ingest.config import IngestConfig
from ingest.contract import CAPTURE_FIELDS, CaptureLimits, Reject, check_capture_record, parse_utc
from ingest.dialogue import DialogueTables, read_dialogue
from ingest.drift import build_profile, device_rates, drift_warnings
from ingest.features import WINDOW_BASE_SCHEMA, FeatureStats, FeatureStore, WindowParts, capture_windows
from ingest.feedback import WEAK_SCHEMA, WINDOW_FEEDBACK_SCHEMA, join_feedback
from ingest.quarantine import QuarantineLog
from ingest.reader import Rejected, SampleLimits, iter_jsonl, load_iq, load_pcm_as_iq, resolve_in_batch
from ingest.sessions import session_events, sessions

if TYPE_CHECKING:
    from runtime.frontend import FrontendConfig

CAPTURES_FILE = "captures.jsonl"
WINDOW_VALIDATION_COLUMNS = ["window_id", "t_end_utc", "end_row", "playback_volume", "weak_confidence"]
QUARANTINE_DIR = "quarantine"


class IngestError(RuntimeError):
    """The batch cannot be ingested as a whole (missing captures.jsonl, too many bad captures)."""


def curated_batch_dirs(curated_root: Path) -> list[Path]:
    """Completed curated batch folders (staging/temp folders start with '.')."""
    if not curated_root.exists():
        return []
    return sorted(
        p
        for p in curated_root.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name != QUARANTINE_DIR
        and (p / "captures.parquet").exists()
    )


def existing_captures(curated_root: Path) -> pl.DataFrame:
    """capture_id, device_id of every capture already curated (only those columns are read)."""
    frames = [
        pl.scan_parquet(p / "captures.parquet").select("capture_id", "device_id")
        for p in curated_batch_dirs(curated_root)
    ]
    if not frames:
        return pl.DataFrame(schema={"capture_id": pl.String, "device_id": pl.String})
    return pl.concat(frames).collect()


def _captures_schema() -> dict:
    types = {str: pl.String, int: pl.Int64}
    schema = {
        name: types.get(kinds[0], pl.Float64) if len(kinds) == 1 else pl.Float64
        for name, kinds in CAPTURE_FIELDS.items()
    }
    return schema | {
        "batch_id": pl.String,
        "t_start_utc": pl.Datetime("us", "UTC"),
        "source_line": pl.Int64,
        "t_start_step_s": pl.Float64,
        "n_frames": pl.Int64,
        "frame_offset": pl.Int64,
    }


def _capture_row(
    record: dict, batch_id: str, line_no: int, t_start: dt.datetime, step_s: float | None
) -> dict:
    row = {name: record[name] for name in CAPTURE_FIELDS}
    for name in ("duration_s", "carrier_hz", "fs_hz", "emission_db", "playback_volume"):
        row[name] = float(row[name])
    row |= {"batch_id": batch_id, "t_start_utc": t_start, "source_line": line_no, "t_start_step_s": step_s}
    return row


def _read_samples(
    raw_dir: Path, record: dict, sample_limits: SampleLimits, baseband_fs_hz: float
) -> tuple[np.ndarray, float]:
    path = resolve_in_batch(raw_dir, record["file"])
    if path.suffix == ".npy":
        return load_iq(path, record, sample_limits), float(record["fs_hz"])
    return load_pcm_as_iq(path, record, sample_limits, baseband_fs_hz), baseband_fs_hz


def _offending_file(raw_dir: Path, record) -> Path | None:
    if isinstance(record, dict) and isinstance(record.get("file"), str) and not os.path.isabs(record["file"]):
        return raw_dir / record["file"]
    return None


def ingest_batch(
    raw_dir: str | os.PathLike,
    curated_root: str | os.PathLike,
    ing: IngestConfig,
    frontend_cfg: FrontendConfig,
) -> dict:
    """Ingest one raw batch; return the summary (also written to <batch>/summary.json).

    ing: IngestConfig.from_params (strict: an unknown or missing ingest key fails before any capture).
    """
    from runtime.frontend import extract_features

    raw_dir, curated_root = Path(raw_dir), Path(curated_root)
    batch_id = raw_dir.name
    captures_path = raw_dir / CAPTURES_FILE
    if not captures_path.is_file():
        raise IngestError(f"{captures_path}: missing — not a raw batch folder")
    limits = CaptureLimits.from_config(ing)
    sample_limits = SampleLimits.from_config(ing)
    context, stride = ing.context_frames, ing.window_stride
    quarantine = QuarantineLog(batch_id, raw_dir, max_copy_bytes=sample_limits.max_declared_bytes)

    curated_root.mkdir(parents=True, exist_ok=True)
    target = curated_root / batch_id
    previous = target if (target / "captures.parquet").exists() else None
    known = existing_captures(curated_root)
    known_ids = set(known["capture_id"].to_list())
    for stale in curated_root.glob(f".{batch_id}.staging-*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{batch_id}.staging-", dir=curated_root))
    try:
        store = FeatureStore(staging / "frames.npy", frontend_cfg.frame_width)
        parts = WindowParts(staging / "_window_parts", ing.window_part_captures)
        stats = FeatureStats(frontend_cfg.frame_width)
        capture_rows: list[dict] = []
        if previous is not None:  # new captures of a batch ingested before are added to it
            old_offset = store.append_from(previous / "frames.npy")
            assert old_offset == 0
            parts.add_table(previous / "windows.parquet")
        devices: set[str] = set(known["device_id"].to_list())
        last_start: dict[str, dt.datetime] = {}
        seen_ids: set[str] = set()
        received = already_present = 0
        clock_tolerance = dt.timedelta(seconds=ing.clock_tolerance_s)
        for line_no, raw, record in iter_jsonl(captures_path):
            received += 1
            problems = [record] if isinstance(record, Reject) else check_capture_record(record, limits)
            if not problems:
                cid, device = record["capture_id"], record["device_id"]
                t_start = parse_utc(record["t_start"])
                devices.add(device)
                if cid in seen_ids:
                    problems = [
                        Reject(
                            "duplicate_capture_id",
                            "capture_id",
                            f"capture_id {cid!r:.60} appears earlier in this batch",
                        )
                    ]
                elif device in last_start and t_start < last_start[device] - clock_tolerance:
                    problems = [
                        Reject(
                            "clock_backwards",
                            "t_start",
                            f"{device}: t_start {record['t_start']} is before "
                            f"the previous capture's {last_start[device].isoformat()}",
                        )
                    ]
            if problems:
                cid = record.get("capture_id") if isinstance(record, dict) else None
                quarantine.add(
                    CAPTURES_FILE,
                    line_no,
                    problems[0],
                    raw=raw,
                    capture_id=cid if isinstance(cid, str) else None,
                    offending_file=_offending_file(raw_dir, record),
                    also=problems[1:],
                )
                continue
            seen_ids.add(cid)
            step_s = (t_start - last_start[device]).total_seconds() if device in last_start else None
            last_start[device] = t_start
            if cid in known_ids:
                already_present += 1
                continue
            try:
                iq, fs_hz = _read_samples(raw_dir, record, sample_limits, frontend_cfg.baseband_fs_hz)
                frames = extract_features(iq, fs_hz, float(record["carrier_hz"]), frontend_cfg)  # [T, V]
                if not np.isfinite(frames).all():
                    raise Rejected("nonfinite_features", "file", "the front-end produced NaN/Inf features")
            except Rejected as exc:
                quarantine.add(
                    CAPTURES_FILE,
                    line_no,
                    exc.reject,
                    raw=raw,
                    capture_id=cid,
                    offending_file=_offending_file(raw_dir, record),
                )
                continue
            except Exception as exc:
                quarantine.add(
                    CAPTURES_FILE,
                    line_no,
                    Reject("feature_extraction_failed", "file", f"{type(exc).__name__}: {str(exc)[:160]}"),
                    raw=raw,
                    capture_id=cid,
                    offending_file=_offending_file(raw_dir, record),
                )
                continue
            offset = store.append(frames)
            row = _capture_row(record, batch_id, line_no, t_start, step_s) | {
                "n_frames": frames.shape[0],
                "frame_offset": offset,
            }
            capture_rows.append(row)
            parts.add(capture_windows(row, frames, offset, frontend_cfg, context, stride))
            stats.add(cid, device, frames)
        total_frames = store.close()

        quarantined = len([e for e in quarantine.entries if e["file"] == CAPTURES_FILE])
        ingested = len(capture_rows)
        assert received == ingested + quarantined + already_present
        dialogue = read_dialogue(raw_dir, batch_id, devices, quarantine)
        quarantine.write(curated_root / QUARANTINE_DIR)
        bad_fraction = quarantined / received if received else 0.0
        if bad_fraction > ing.max_bad_fraction:
            raise IngestError(
                f"batch {batch_id}: {quarantined} of {received} captures quarantined ({bad_fraction:.0%} > "
                f"max_bad_fraction {ing.max_bad_fraction:.0%}); "
                f"reasons {quarantine.reasons(CAPTURES_FILE)}; "
                f"see {curated_root / QUARANTINE_DIR / batch_id / 'quarantine.jsonl'}"
            )
        summary = {
            "batch_id": batch_id,
            "received": received,
            "ingested": ingested,
            "quarantined": quarantined,
            "already_present": already_present,
            "counts_add_up": received == ingested + quarantined + already_present,
            "reasons": quarantine.reasons(CAPTURES_FILE),
            "bad_fraction": bad_fraction,
            "dialogue": dialogue.counts() | {"reasons": quarantine.reasons("dialogue.jsonl")},
        }
        if ingested == 0 and previous is not None:
            summary |= {
                "batch_written": False,
                "validation": {},
                "drift_reference": None,
                "drift_warnings": [],
            }
            return summary  # nothing new: the curated batch stays exactly as it was
        summary |= _finish_batch(
            staging,
            previous,
            capture_rows,
            parts,
            stats,
            total_frames,
            dialogue,
            devices,
            curated_root,
            batch_id,
            ing,
        )
        with atomic_dir(target) as tmp:
            for item in staging.iterdir():
                if not item.name.startswith("_"):
                    os.replace(item, tmp / item.name)
            atomic_write_json(tmp / "summary.json", summary)
        return summary
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _finish_batch(
    staging: Path,
    previous: Path | None,
    capture_rows: list[dict],
    parts: WindowParts,
    stats: FeatureStats,
    total_frames: int,
    dialogue: DialogueTables,
    devices: set[str],
    curated_root: Path,
    batch_id: str,
    ing: IngestConfig,
) -> dict:
    """Write every table of the batch into staging; return the validation and drift part of the summary."""
    from ingest.validation import validate_tables

    captures = pl.DataFrame(capture_rows, schema=_captures_schema(), orient="row")
    if previous is not None:
        captures = pl.concat([pl.read_parquet(previous / "captures.parquet"), captures], how="vertical")
    atomic_write_parquet(staging / "captures.parquet", captures)
    dialogue_tables = {
        "dialogue": dialogue.turns,
        "routines": dialogue.routines,
        "playback": dialogue.playback,
        "feedback": dialogue.feedback,
    }
    for name, table in dialogue_tables.items():
        atomic_write_parquet(staging / f"{name}.parquet", table)
    atomic_write_parquet(staging / "playback_events.parquet", dialogue.playback_events)
    grouped = session_events(dialogue.turns, dialogue.routines, dialogue.feedback, ing.sessions.gap_s)
    atomic_write_parquet(staging / "session_events.parquet", grouped)
    atomic_write_parquet(staging / "sessions.parquet", sessions(grouped))

    # windows: joined with feedback device by device, so only one device's windows are in memory
    base = parts.scan()
    joined_dir = staging / "_windows_joined"
    joined_dir.mkdir()
    windows_parts, weak_parts = [], []
    for k, device in enumerate(sorted(captures["device_id"].unique().to_list())):
        windows = base.filter(pl.col("device_id") == device).collect()
        out, weak = join_feedback(windows, _device_tables(dialogue, device), ing.feedback)
        windows_parts.append(joined_dir / f"windows-{k:05d}.parquet")
        weak_parts.append(joined_dir / f"weak-{k:05d}.parquet")
        out.write_parquet(windows_parts[-1])
        weak.write_parquet(weak_parts[-1])
    empty_windows = pl.DataFrame(schema=WINDOW_BASE_SCHEMA | WINDOW_FEEDBACK_SCHEMA)
    scans = [pl.scan_parquet(p) for p in windows_parts]
    if scans:  # streamed to disk; only the columns validation needs come back into memory
        pl.concat(scans).sort("end_row").sink_parquet(staging / "windows.parquet")
    else:
        atomic_write_parquet(staging / "windows.parquet", empty_windows)
    windows_all = pl.scan_parquet(staging / "windows.parquet").select(WINDOW_VALIDATION_COLUMNS).collect()
    weak_all = (
        pl.concat([pl.read_parquet(p) for p in weak_parts])
        if weak_parts
        else pl.DataFrame(schema=WEAK_SCHEMA)
    )
    atomic_write_parquet(staging / "weak_labels.parquet", weak_all)

    if previous is not None:  # stats of the old captures: recompute from the merged feature store, chunked
        stats = FeatureStats(stats.n_bins)
        frames = np.load(staging / "frames.npy", allow_pickle=False, mmap_mode="r")
        for row in captures.select("capture_id", "device_id", "frame_offset", "n_frames").iter_rows():
            stats.add(row[0], row[1], np.asarray(frames[row[2] : row[2] + row[3]]))
    feature_table = stats.table()
    events = pl.concat(
        [
            t.select("event_id", "device_id", "ts", pl.lit(kind).alias("kind"))
            for kind, t in (
                ("turn", dialogue.turns),
                ("routine", dialogue.routines),
                ("playback", dialogue.playback_events),
                ("feedback", dialogue.feedback),
            )
        ]
    )
    validation = validate_tables(
        {"captures": captures, "dialogue": events, "features": feature_table, "windows": windows_all},
        ing,
        sorted(devices),
        staging / "validation",
    )
    bin_mean, bin_std = stats.bin_mean_std()
    profile = build_profile(bin_mean, bin_std, stats.count, device_rates(captures, events))
    atomic_write_json(staging / "profile.json", profile)
    reference, warnings = drift_warnings(profile, curated_root, batch_id, ing.drift)
    weak_counts = weak_all.group_by("source").len().sort("source")
    return {
        "batch_written": True,
        "total_frames": total_frames,
        "n_windows": windows_all.height,
        "weak_labels": dict(zip(weak_counts["source"].to_list(), weak_counts["len"].to_list(), strict=True)),
        "validation": validation,
        "validation_success": all(v["success"] for v in validation.values()),
        "drift_reference": reference,
        "drift_warnings": warnings,
    }


def _device_tables(dialogue: DialogueTables, device: str) -> DialogueTables:
    def only(t: pl.DataFrame) -> pl.DataFrame:
        return t.filter(pl.col("device_id") == device)

    return DialogueTables(
        turns=only(dialogue.turns),
        routines=only(dialogue.routines),
        playback_events=only(dialogue.playback_events),
        playback=only(dialogue.playback),
        feedback=only(dialogue.feedback),
        received=0,
        ingested=0,
        quarantined=0,
    )


def read_summary(curated_root: str | os.PathLike, batch_id: str) -> dict:
    return read_json(Path(curated_root) / batch_id / "summary.json")
