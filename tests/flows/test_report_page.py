"""The turn page (index.html): written by the report stage from a synthetic turn's outputs, self-contained,
"not measured" where the evaluation lacks the episode keys, `flywheel report` commands, and a real
headless Chromium that loads the page from disk (images decoded, nothing fetched, no console error)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from common.io import atomic_write_json, atomic_write_jsonl, read_json
from common.params import load_params
from common.paths import Paths
from flows.page_check import check_page, find_browser
from flows.report import PAGE_NAME, artifact_tables, write_turn_report
from flows.report_gallery import false_trigger_rows
from flows.report_page import NOT_MEASURED, render_compare, render_page

ROOT = Path(__file__).resolve().parents[2]
N_BINS, CONTEXT = 48, 32
TYPES = ("fan", "curtain", "pet")


def _detector_eval(scale: float) -> dict:
    """An evaluation summary with the episode keys (training/evaluate.py after the episode rewrite)."""
    thresholds = [0.2, 0.4, 0.6, 0.8]
    curve = [
        {"threshold": t, "false_triggers_per_empty_hour": scale * (1 - t) * 4, "missed_entry_rate": t * 0.5}
        for t in thresholds
    ]
    return {
        "false_triggers_per_empty_hour": scale,
        "false_triggers_per_device_day": 24 * scale,
        "empty_hours": 3.0,
        "occupied_hours": 1.0,
        "device_days": 0.2,
        "entry_recall": 0.9,
        "entry_latency_median_s": 0.8,
        "entry_latency_p95_s": 2.1,
        "false_absences_per_occupied_hour": 0.3,
        "occupied_absent_fraction": 0.05,
        "empty_present_fraction": 0.01,
        "false_triggers_by_type": {
            t: {"count": i + 1, "hours": 0.5, "per_hour": scale * (i + 1) / 0.5} for i, t in enumerate(TYPES)
        },
        "det_curve": curve,
        "operating_point": curve[2],
    }


def _curated(folder: Path, batch: str, n_captures: int, per_capture: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n_frames = n_captures * (per_capture + CONTEXT)
    folder.mkdir(parents=True)
    np.save(folder / "frames.npy", rng.normal(-95, 3, (n_frames, N_BINS)).astype(np.float32))
    rows = []
    for c in range(n_captures):
        first = c * (per_capture + CONTEXT)
        for k in range(per_capture):
            end_row = first + CONTEXT - 1 + k
            rows.append(
                {
                    "window_id": f"{batch}-cap{c}:{CONTEXT - 1 + k}",
                    "capture_id": f"{batch}-cap{c}",
                    "device_id": "dev-0",
                    "batch_id": batch,
                    "end_row": end_row,
                    "t_end_s": (CONTEXT + k) * 0.032,
                }
            )
    windows = pl.DataFrame(rows)
    windows.write_parquet(folder / "windows.parquet")
    return windows


def _bundle(path: Path) -> None:
    from runtime.mbdp import bundle_tuning

    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "version": "0.1.0",
        "release_counter": 7,
        "git_revision": "abc123",
        "params_hash": "p" * 64,
        "data_hashes": {"data/curated/field": "sha256:" + "d" * 64},
        "release": {"model": "retrained"},
    }
    with tarfile.open(path, "w") as tar:
        for name, doc in (("manifest.json", manifest), ("payload/mbdp.json", bundle_tuning("speaker4"))):
            blob = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def make_turn(root: Path, turn: str = "turn-001", scale: float = 1.0) -> tuple[dict, Paths, list[dict]]:
    """A data root with what the stages leave for the report stage (small, synthetic, no training)."""
    params = load_params(ROOT / "params.yaml", "tiny")
    params["turn"] = {"id": turn}
    paths = Paths.for_params(params, root)
    for folder, file, result in (
        ("seed", "int8.json", _detector_eval(2 * scale)),
        ("retrained", "int8.json", _detector_eval(scale)),
        ("cfar", "cfar.json", _detector_eval(4 * scale)),
    ):
        atomic_write_json(paths.evaluation(folder) / file, result)
    eval_windows = _curated(paths.curated("eval"), "eval", 3, 20, 1)
    field_windows = _curated(paths.curated("field"), "field", 2, 20, 2)
    atomic_write_jsonl(
        paths.evaluation("retrained") / "episodes.jsonl",
        [
            {
                "kind": "entry",
                "device_id": "dev-0",
                "capture_id": "eval-cap0",
                "t_s": 1.5,
                "event_type": "walk_in",
                "detected": True,
                "latency_s": 0.7,
            },
            *[
                {
                    "kind": "false_trigger",
                    "device_id": "dev-0",
                    "capture_id": f"eval-cap{c}",
                    "t_s": 1.4 + 0.1 * c,
                    "event_type": TYPES[c],
                    "detected": None,
                    "latency_s": None,
                }
                for c in range(3)
            ],
        ],
    )
    picks = field_windows.head(12).with_columns(
        pl.Series("p_none", np.linspace(0.1, 0.9, 12, dtype=np.float32)),
        pl.Series("p_minor", np.zeros(12, np.float32)),
        pl.Series("p_major", np.zeros(12, np.float32)),
        pl.Series("p_present", np.linspace(0.9, 0.1, 12, dtype=np.float32)),
        pl.Series("strategy", ["uncertain", "novel", "hard_negative"] * 4),
    )
    paths.labels("field-picks").mkdir(parents=True)
    picks.drop("end_row").write_parquet(paths.labels("field-picks") / "picks.parquet")
    paths.labels("field").mkdir(parents=True)
    pl.DataFrame(
        {
            "window_id": picks["window_id"][:10],
            "batch_id": ["field"] * 10,
            "label": [0, 1, 2, 0, 0, 1, 2, 0, 0, 1],
            "source": ["oracle"] * 10,
            "confidence": [0.98] * 10,
            "strategy": picks["strategy"][:10],
        }
    ).write_parquet(paths.labels("field") / "labels.parquet")
    atomic_write_json(
        paths.bundle_dir / "release_gate.json",
        {
            "shipped": "retrained",
            "candidate": "retrained",
            "incumbent": "seed",
            "reason": "candidate passes every check",
            "checks": [
                {"check": "int8_gate", "candidate": True, "incumbent": True, "limit": None, "passed": True},
                {
                    "check": "entry_recall",
                    "candidate": 0.9,
                    "incumbent": 0.88,
                    "limit": -0.02,
                    "passed": True,
                },
            ],
        },
    )
    _bundle(paths.bundle)
    atomic_write_json(
        paths.deployment / "deploy.json",
        {
            "installed": True,
            "bundle_sha256": "b" * 64,
            "status": {"device": str(root / "devices" / "dev-lab-000")},
            "calibration": {
                "action": "calibrated",
                "carrier_hz": 38500.0,
                "emission_db": -29.5,
                "snr_db": 83.2,
                "interferers": 1,
                "reasons": [],
            },
        },
    )
    fleet = root / "fleet"
    atomic_write_json(
        fleet / "unit-03" / "calibration.json",
        {
            "device_id": "unit-03",
            "carrier_hz": 41000.0,
            "emission_db": -24.0,
            "snr_db_at_emission": 80.5,
            "interferers": [{"kind": "tone", "f_lo_hz": 38000, "f_hi_hz": 38100}],
        },
    )
    atomic_write_json(
        fleet / "rollouts" / "release-000007" / "decisions.json",
        {
            "outcome": "rolled_out",
            "decisions": [{"step": "gate", "decision": "proceed", "reasons": ["ok"]}],
            "summary": {
                "proceed": True,
                "canaries": ["unit-03"],
                "rest_installed": 4,
                "rest_refused": 0,
                "rolled_back": [],
                "gate": {
                    "reasons": ["canaries within limits"],
                    "numbers": {"canary_fa_per_hour": 0.4, "baseline_fa_per_hour": 0.5},
                },
            },
        },
    )
    records = [
        {
            "stage": "ingest@field",
            "seconds": 2.5,
            "summary": {
                "received": 5,
                "ingested": 4,
                "quarantined": 1,
                "already_present": 0,
                "reasons": {"bad header": 1},
                "validation": {
                    "captures": {"evaluated": 23, "failed": ["expect_column_values_to_be_between(rms)"]}
                },
                "validation_success": False,
                "drift_reference": None,
                "drift_warnings": [],
            },
        },
        {"stage": "mine", "seconds": 0.5, "summary": {"by_strategy": {"uncertain": 4}}},
        {"stage": "report", "seconds": 1.0, "summary": {}},
    ]
    assert len(eval_windows) == 60
    return params, paths, records


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-turn")
    params, paths, records = make_turn(root)
    write_turn_report(params, paths, records)
    return params, paths


def test_the_page_is_one_self_contained_file(turn):
    _, paths = turn
    page = (paths.report_dir / PAGE_NAME).read_text()
    report = read_json(paths.report_dir / "report.json")
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith(("data:image/png;base64,", "#")) for u in links)
    assert "<link" not in page and "<script" not in page
    n_plots = sum(len(v) for v in report["plots"].values())
    assert page.count('src="data:image/png;base64,') == n_plots >= 10
    for name in ("det.png", "false_triggers_by_type.png", "gallery_false_triggers.png", "mbdp_crossover.png"):
        assert (paths.report_dir / "plots" / name).stat().st_size > 0


def test_the_page_shows_every_section_from_report_json(turn):
    _, paths = turn
    page = (paths.report_dir / PAGE_NAME).read_text()
    report = read_json(paths.report_dir / "report.json")
    assert NOT_MEASURED not in page
    assert set(report["gallery"]["picks"]) == {"uncertain", "novel", "hard_negative"}
    assert all(
        len(rows) == 4 for rows in report["gallery"]["picks"].values()
    )  # params report.gallery_per_strategy
    assert report["gallery"]["picks"]["uncertain"][0]["label"] == "none"
    assert report["detectors"]["retrained"]["entry_recall"] == 0.9
    assert report["det_curves"]["cfar"]["operating_point"]["threshold"] == 0.6
    assert report["rollout"]["outcome"] == "rolled_out"
    assert [u["device"] for u in report["calibration_units"]] == ["dev-lab-000", "unit-03"]
    assert report["mbdp"]["crossovers_hz"] == [120.0, 800.0, 4000.0]
    assert report["lineage"]["bundle_sha256"] and report["lineage"]["release_counter"] == 7
    for text in ("rolled_out", "canary_fa_per_hour", "38500", "unit-03", "bad header", "rms)", "abc123"):
        assert text in page
    assert report["evaluation"]["retrained_int8"]["false_triggers_per_empty_hour"] == 1.0  # report.md's table


def test_sections_say_not_measured_without_the_episode_keys(turn, tmp_path):
    _, paths = turn
    report = read_json(paths.report_dir / "report.json")
    for key in ("detectors", "det_curves", "false_triggers_by_type"):
        report[key] = {name: None for name in report[key]}
    report["gallery"]["false_triggers"] = []
    report["plots"] = {**report["plots"], "det": [], "false_triggers": []}
    page = render_page(report, paths.report_dir)
    assert page.count(NOT_MEASURED) == 4  # episode figures, DET, by type, false-trigger gallery


def test_worst_false_triggers_take_the_nearest_window_of_their_capture(tmp_path):
    windows = pl.DataFrame(
        {
            "window_id": ["c:1", "c:2", "c:3", "d:1"],
            "capture_id": ["c", "c", "c", "d"],
            "t_end_s": [1.0, 2.0, 3.0, 1.0],
        }
    )
    episodes = [
        {"kind": "entry", "capture_id": "c", "t_s": 2.0},
        {"kind": "false_trigger", "capture_id": "c", "t_s": 2.4},
        {"kind": "false_trigger", "capture_id": "d", "t_s": 9.0},
    ]
    rows = false_trigger_rows(episodes, windows, None, tmp_path, CONTEXT, 5)
    assert [r["window_id"] for r in rows] == ["c:2", "d:1"]
    with pytest.raises(ValueError, match=r"windows.parquet.*'x'"):
        false_trigger_rows(
            [{"kind": "false_trigger", "capture_id": "x", "t_s": 0}], windows, None, tmp_path, 4, 5
        )


def test_compare_puts_both_turns_side_by_side(turn, tmp_path):
    _, paths = turn
    other_params, other, records = make_turn(tmp_path / "b", turn="turn-002", scale=0.5)
    write_turn_report(other_params, other, records)
    a, b = (read_json(d / "report.json") for d in (paths.report_dir, other.report_dir))
    page = render_compare((a, paths.report_dir), (b, other.report_dir))
    assert page.count('<div class="pair">') == 8 and "turn-001" in page and "turn-002" in page
    n_plots = sum(len(v) for r in (a, b) for v in r["plots"].values())
    assert page.count("data:image/png;base64,") == n_plots


def test_report_commands(turn, tmp_path):
    from flows.cli import app

    _, paths = turn
    runner = CliRunner()
    opened = runner.invoke(app, ["report", "open", "turn-001", "--data-dir", str(paths.root), "--no-browser"])
    assert opened.exit_code == 0 and opened.output.strip() == str((paths.report_dir / PAGE_NAME).resolve())
    out = tmp_path / "cmp" / "index.html"
    compared = runner.invoke(
        app,
        [
            "report",
            "compare",
            "turn-001",
            str(paths.report_dir),
            "--out",
            str(out),
            "--data-dir",
            str(paths.root),
        ],
    )
    assert compared.exit_code == 0 and out.read_text().count('<div class="pair">') == 8
    missing = runner.invoke(app, ["report", "open", "turn-404", "--data-dir", str(paths.root)])
    assert missing.exit_code == 2 and "turn-404/report.json" in missing.output


def test_artifact_tables_carry_the_page_tables(turn):
    _, paths = turn
    tables = artifact_tables(read_json(paths.report_dir / "report.json"))
    assert {"turn-detectors", "turn-detector-episodes", "turn-ingest", "turn-release-gate"} <= set(tables)
    assert tables["turn-ingest"][1][0]["quarantined"] == 1


def _chromium() -> str:
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium here: `.ci/run` installs Debian's chromium (apt-get install -y chromium)")
    return browser


@pytest.mark.slow
def test_the_page_in_headless_chromium(turn, tmp_path):
    browser = _chromium()
    _, paths = turn
    result = check_page(paths.report_dir / PAGE_NAME, tmp_path / "screenshot.png", browser=browser)
    n_plots = sum(len(v) for v in read_json(paths.report_dir / "report.json")["plots"].values())
    assert result.problems == []
    assert len(result.images) == n_plots and all(i["naturalWidth"] > 0 for i in result.images)
    assert result.requests[0] == result.url and not result.external_requests
    png = (tmp_path / "screenshot.png").read_bytes()
    assert png.startswith(b"\x89PNG") and result.page_size[1] > 2000


@pytest.mark.slow
def test_the_browser_check_catches_a_broken_page(tmp_path):
    browser = _chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="remote" src="http://127.0.0.1:9/x.png">'
        '<img alt="broken" src="data:image/png;base64,AAAA">'
        '<script>console.error("boom")</script></body></html>'
    )
    result = check_page(page, tmp_path / "bad.png", browser=browser, timeout_s=30)
    assert result.external_requests == ["http://127.0.0.1:9/x.png"]
    assert {i["alt"] for i in result.broken_images} == {"remote", "broken"}
    assert any("boom" in e for e in result.console_errors)
