"""great-expectations suites over a curated batch: captures metadata, dialogue events, feature statistics
and windows. One ephemeral context per run; results are kept as JSON (validation/<suite>.json).

Failures are reported (success per suite in the summary), not raised: quarantine already removed
what breaks the contract, so a failing suite here means the data drifted from what we expect.

The JSON written keeps what a reader needs (each expectation, its success, its observed values, the
statistics, the data fingerprint) and leaves out what great-expectations stamps on every run (clock
times, fresh UUIDs), so the same batch gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from common.io import atomic_write_json
from ingest.config import IngestConfig
from ingest.contract import DIALOGUE_KINDS, TRIGGERS, accepted_profiles


def _expectations(ing: IngestConfig, known_devices: list[str]) -> dict[str, list]:
    import great_expectations.expectations as gxe

    lo_db, hi_db = ing.feature_db_bounds
    lo_e, hi_e = ing.feature_energy_db_bounds
    captures = [
        gxe.ExpectColumnValuesToNotBeNull(column=c)
        for c in (
            "capture_id",
            "device_id",
            "profile",
            "t_start",
            "duration_s",
            "carrier_hz",
            "fs_hz",
            "n_mics",
            "trigger",
            "playback_volume",
            "file",
            "n_frames",
            "frame_offset",
        )
    ]
    captures += [
        gxe.ExpectColumnValuesToBeUnique(column="capture_id"),
        gxe.ExpectColumnValuesToBeInSet(column="profile", value_set=accepted_profiles(ing)),
        gxe.ExpectColumnValuesToBeInSet(column="trigger", value_set=list(TRIGGERS)),
        gxe.ExpectColumnValuesToBeBetween(
            column="carrier_hz", min_value=ing.lab_min_carrier_hz, max_value=ing.device_carrier_hz[1]
        ),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="n_mics", min_value=1, max_value=ing.max_n_mics),
        gxe.ExpectColumnValuesToBeBetween(column="playback_volume", min_value=0, max_value=10),
        gxe.ExpectColumnValuesToBeBetween(column="n_frames", min_value=0),
        gxe.ExpectColumnValuesToBeUnique(column="frame_offset"),
        # monotonic time per device: step from the device's previous capture (file order), null for the first
        gxe.ExpectColumnValuesToBeBetween(column="t_start_step_s", min_value=-ing.clock_tolerance_s),
    ]
    dialogue = [
        gxe.ExpectColumnValuesToNotBeNull(column="event_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="ts"),
        gxe.ExpectColumnValuesToBeUnique(column="event_id"),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(DIALOGUE_KINDS)),
        gxe.ExpectColumnValuesToBeInSet(column="device_id", value_set=known_devices),
    ]
    features = [
        gxe.ExpectColumnValuesToBeUnique(column="capture_id"),
        gxe.ExpectColumnValuesToBeBetween(column="n_nonfinite", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="n_frames", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="feature_min", min_value=lo_db, max_value=hi_db),
        gxe.ExpectColumnValuesToBeBetween(column="feature_max", min_value=lo_db, max_value=hi_db),
        gxe.ExpectColumnValuesToBeBetween(column="feature_mean", min_value=lo_e, max_value=hi_e),
        gxe.ExpectColumnValuesToNotBeNull(column="feature_std"),
    ]
    windows = [
        gxe.ExpectColumnValuesToBeUnique(column="window_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="t_end_utc"),
        gxe.ExpectColumnValuesToBeBetween(column="end_row", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="playback_volume", min_value=0, max_value=10),
        gxe.ExpectColumnValuesToBeBetween(column="weak_confidence", min_value=0, max_value=1),
    ]
    return {"captures": captures, "dialogue": dialogue, "features": features, "windows": windows}


# great-expectations' per-run stamps: where they sit in a validation result's JSON
RUN_STAMPS_META = (
    "run_id",
    "validation_id",
    "validation_time",
)  # meta.run_id holds run_time (and a null name)
RUN_STAMPS_BATCH = ("ge_load_time",)  # meta.batch_markers


def deterministic_result(payload: dict) -> dict:
    """A validation result's JSON without the clock times and UUIDs great-expectations stamps on each run:
    the result's and every expectation's id, meta.run_id, meta.validation_id, meta.validation_time and
    meta.batch_markers.ge_load_time."""
    out = {k: v for k, v in payload.items() if k != "id"}
    meta = {k: v for k, v in out.get("meta", {}).items() if k not in RUN_STAMPS_META}
    if "batch_markers" in meta:
        meta["batch_markers"] = {k: v for k, v in meta["batch_markers"].items() if k not in RUN_STAMPS_BATCH}
    out["meta"] = meta
    out["results"] = [
        {**r, "expectation_config": {k: v for k, v in r["expectation_config"].items() if k != "id"}}
        for r in out.get("results", [])
    ]
    return out


def validate_tables(
    tables: dict[str, pl.DataFrame], ing: IngestConfig, known_devices: list[str], out_dir: Path
) -> dict:
    """Run every suite on its table; write out_dir/<suite>.json.

    Returns {suite: {success, evaluated, failed}}.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # its INFO lines ("Created temporary directory ... for ephemeral docs site") say nothing to users
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the second sets its own level
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = ctx.data_sources.add_pandas("curated")
    results = {}
    for name, expectations in _expectations(ing, known_devices).items():
        columns = list(dict.fromkeys(e.column for e in expectations))  # only what the suite reads
        frame = tables[name].select(columns).to_pandas()
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        payload = deterministic_result(result.to_json_dict())
        atomic_write_json(out_dir / f"{name}.json", payload)
        failed = [
            f"{r['expectation_config']['type']}({r['expectation_config']['kwargs'].get('column')})"
            for r in payload["results"]
            if not r["success"]
        ]
        results[name] = {
            "success": bool(payload["success"]),
            "evaluated": len(payload["results"]),
            "failed": failed,
        }
    return results
