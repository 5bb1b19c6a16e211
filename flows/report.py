"""The turn report: report.json (DVC metrics), report.md, plots and index.html, from what the stages left.

collect() reads every stage's outputs into report.json; flows/report_figures.py draws the plots from
it, and flows/report_page.py renders the self-contained page (index.html) from report.json and plots/.
"""

from __future__ import annotations

from pathlib import Path

from common.io import atomic_write_json, atomic_write_text, read_json
from common.paths import Paths

PAGE_NAME = "index.html"
MODEL_ROWS = (("seed", "float"), ("seed", "int8"), ("retrained", "float"), ("retrained", "int8"))
HEADLINE = (  # training.metrics figures (docs/evaluation.md)
    "false_triggers_per_empty_hour",
    "false_triggers_strict",  # onsets on major motion (strict threshold) with nobody there
    "false_triggers_lenient",  # re-entries on minor motion in the occupied window with nobody there
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
    "empty_present_fraction",
)
HOUSEHOLD = ("false_triggers_per_device_day", "device_days", "occupied_hours")  # household-only figures


def _load(path: Path) -> dict | None:
    return read_json(path) if path.exists() else None


def collect(params: dict, paths: Paths, records: list[dict]) -> dict:
    evaluations = {}
    for model, variant in MODEL_ROWS:
        result = _load(paths.evaluation(model) / f"{variant}.json")
        if result is not None:
            evaluations[f"{model}_{variant}"] = result
    cfar = _load(paths.evaluation("cfar") / "cfar.json")
    if cfar is not None:
        evaluations["cfar"] = cfar
    household = {}  # the same detectors on household days (int8 models as shipped; CFAR)
    for name in ("seed", "retrained", "cfar"):
        result = _load(paths.evaluation(name) / "household.json")
        if result is not None:
            household[name] = result
    by_stage = {r["stage"]: r for r in records}
    release = _load(paths.bundle_dir / "release_gate.json")
    shipped = release["shipped"] if release else "retrained"
    labels = {
        "seed_lab": by_stage.get("label_seed", {}).get("summary", {}).get("labels"),
        "field_paid": by_stage.get("label_field", {}).get("summary", {}).get("paid_labels"),
        "field_weak": by_stage.get("label_field", {}).get("summary", {}).get("weak_labels"),
        "budget": params["mining"]["budget"],
        "picks_by_strategy": by_stage.get("mine", {}).get("summary", {}).get("by_strategy"),
    }
    ingest = {name.split("@")[1]: r["summary"] for name, r in by_stage.items() if name.startswith("ingest@")}
    return {
        "turn": paths.turn,
        "preset": params.get("preset"),
        "stage_seconds": {r["stage"]: r["seconds"] for r in records},
        "labels": labels,
        "ingest": {
            b: {k: s.get(k) for k in ("received", "ingested", "quarantined", "already_present", "reasons")}
            for b, s in ingest.items()
        },
        "data_quality": {
            b: {
                "suites": {
                    suite: {"evaluated": v.get("evaluated"), "failed": v.get("failed", [])}
                    for suite, v in (s.get("validation") or {}).items()
                },
                "success": s.get("validation_success"),
                "drift_reference": s.get("drift_reference"),
                "drift_warnings": s.get("drift_warnings", []),
            }
            for b, s in ingest.items()
        },
        "rare_event_trigger": _load(paths.model("rare_event") / "summary.json"),
        "evaluation": {name: {k: r.get(k) for k in HEADLINE} for name, r in evaluations.items()},
        "household": {name: {k: r.get(k) for k in (*HEADLINE, *HOUSEHOLD)} for name, r in household.items()},
        "by_event_type": {name: r.get("false_triggers_by_type", {}) for name, r in evaluations.items()},
        "release": release,
        "quantization": _load(paths.model(shipped) / "onnx" / "quantization.json"),
        "int8_gate": {m: _load(paths.evaluation(m) / "int8_gate.json") for m in ("seed", "retrained")},
        "budget": _load(paths.model(shipped) / "onnx" / "budget.json"),
        "deployment": _load(paths.deployment / "deploy.json"),
        **collect_page_sections(params, paths, shipped),
    }


def collect_page_sections(params: dict, paths: Paths, shipped: str) -> dict:
    """What only the page shows: episode figures, DET curves, gallery, rollout, DSP, lineage."""
    import polars as pl

    from common.io import read_jsonl
    from flows import report_gallery as gallery
    from flows import report_sections as sec

    rp = params["report"]
    results = sec.detector_results(paths)
    manifest = sec.bundle_manifest(paths)
    fleet_dir = paths.root / rp["fleet_dir"]
    deployment = _load(paths.deployment / "deploy.json")
    episodes_file = sec.episodes_path(paths, shipped)
    eval_windows = paths.curated("eval") / "windows.parquet"
    false_triggers = []
    if episodes_file.exists() and eval_windows.exists():
        false_triggers = gallery.false_trigger_rows(
            read_jsonl(episodes_file),
            pl.read_parquet(eval_windows),
            paths.model(shipped) / "onnx" / "model_int8.onnx",
            paths.curated("eval"),
            int(params["ingest"]["context_frames"]),
            int(rp["gallery_false_triggers"]),
        )
    return {
        "detectors": {n: sec.episode_metrics(r) for n, r in results.items()},
        "det_curves": {n: sec.det_curve(r) for n, r in results.items()},
        "false_triggers_by_type": {n: sec.false_triggers_by_type(r) for n, r in results.items()},
        "gallery": {
            "picks": gallery.pick_rows(
                paths.labels("field-picks") / "picks.parquet",
                paths.labels("field") / "labels.parquet",
                int(rp["gallery_per_strategy"]),
            ),
            "false_triggers_of": shipped,
            "false_triggers": false_triggers,
        },
        "rollout": sec.rollout(paths, manifest, fleet_dir),
        "calibration_units": sec.calibration_units(paths, deployment, fleet_dir),
        "mbdp": sec.crossover(paths),
        "lineage": sec.lineage(paths, manifest),
    }


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _detector_table(title: str, rows: dict[str, dict], keys: tuple[str, ...]) -> list[str]:
    """A markdown section: one row per detector, one column per figure."""
    lines = [f"## {title}", "", "| detector | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    return lines


def render_markdown(report: dict) -> str:
    lines = [
        f"# Flywheel turn {report['turn']}",
        "",
        f"The turn page with every plot: [{PAGE_NAME}]({PAGE_NAME})",
        "",
    ]
    if report.get("preset"):
        lines += [f"Preset: `{report['preset']}`", ""]
    lines += _detector_table("Detectors on the held-out stress eval batch", report["evaluation"], HEADLINE)
    lines += ["", "![false triggers per nuisance-hour by type](plots/false_alarms_by_type.png)", ""]
    if report.get("household"):
        keys = ("false_triggers_per_device_day", *HEADLINE, "device_days")
        lines += [*_detector_table("Detectors on household days (held out)", report["household"], keys), ""]
    lines += ["## int8 against float (eval batch, frame decisions)", ""]
    for model, gate in (report.get("int8_gate") or {}).items():
        if gate:
            verdict = "passed" if gate["passed"] else "FAILED"
            lines.append(
                f"- {model}: agreement {_fmt(gate['decision_agreement'])} "
                f"(target {gate['target']}) over {gate['n_frames']} frames: {verdict}"
            )
    lines.append("")
    lines += _release_lines(report.get("release"))
    lab = report["labels"]
    lines += [
        "## Labels",
        "",
        f"- seed (lab protocol): {_fmt(lab['seed_lab'])}",
        f"- field, paid (budget {lab['budget']}): {_fmt(lab['field_paid'])}",
        f"- field, weak (dialogue logs): {_fmt(lab['field_weak'])}",
        f"- picks by strategy: {lab['picks_by_strategy']}",
        "",
    ]
    lines += [
        "## Ingest",
        "",
        "| batch | received | ingested | quarantined | already present |",
        "|---|---|---|---|---|",
    ]
    for b, s in report["ingest"].items():
        lines.append(
            f"| {b} | {s['received']} | {s['ingested']} | {s['quarantined']} | {s['already_present']} |"
        )
    lines += _data_quality_lines(report)
    trigger = report.get("rare_event_trigger")
    if trigger:
        lines += ["", "## Rare-event capture trigger", ""]
        if "threshold" in trigger:
            lines += [
                f"- trained on {trigger['n_rare']} rare and {trigger['n_other']} other paid windows "
                f"({trigger['definition']})",
                f"- threshold {_fmt(trigger['threshold'])}: fires on {_fmt(trigger['recall_on_rare'])} "
                f"of the rare windows and {_fmt(trigger['rate_on_other'])} of the others; "
                "shipped in the bundle",
            ]
        else:
            lines.append(f"- not trained, bundle ships without it: {trigger.get('error')}")
    lines += ["", "## Stage timings", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {n} | {s:.1f} |" for n, s in report["stage_seconds"].items()]
    dep = report.get("deployment")
    if dep:
        st = dep.get("status", {})
        verdict = (
            "already active"
            if dep.get("already_active")
            else ("installed" if dep["installed"] else "REFUSED")
        )
        lines += [
            "",
            "## Deployment",
            "",
            f"- device `{st.get('device')}` ({st.get('profile')}): {verdict}",
            f"- active slot {st.get('active_slot')}, bundle {st.get('bundle_version')}, "
            f"release counter {st.get('release_counter')}",
            f"- bundle sha256 `{dep.get('bundle_sha256')}`",
        ]
        if not dep["installed"]:
            lines.append(f"- refused at {dep.get('step')}: {dep.get('reason')}")
        cal = dep.get("calibration")
        if cal:
            reasons = f" ({'; '.join(cal['reasons'])})" if cal.get("reasons") else ""
            lines.append(
                f"- calibration {cal['action']}{reasons}: carrier {cal['carrier_hz']:.0f} Hz at "
                f"{cal['emission_db']:.1f} dB FS, SNR {cal['snr_db']:.1f} dB, "
                f"{cal['interferers']} interferer(s) heard"
            )
    return "\n".join(lines) + "\n"


def _release_lines(release: dict | None) -> list[str]:
    """Which model the bundle ships and the release gate's checks (deploy.release_gate)."""
    if not release:
        return []
    lines = [
        "## Release gate",
        "",
        f"- bundle ships **{release['shipped']}** ({release['reason']})",
        "",
        f"| check | {release['candidate']} | {release['incumbent']} | limit | passed |",
        "|---|---|---|---|---|",
    ]
    for c in release["checks"]:
        verdict = "not measured" if c["passed"] is None else ("yes" if c["passed"] else "NO")
        figures = " | ".join(_fmt(c[k]) for k in ("candidate", "incumbent", "limit"))
        lines.append(f"| {c['check']} | {figures} | {verdict} |")
    return [*lines, ""]


def _data_quality_lines(report: dict) -> list[str]:
    """great-expectations results and drift warnings per batch (the JSON is in curated/<batch>/validation)."""
    lines = ["", "## Data quality (great-expectations, drift)", ""]
    lines += ["| batch | suites | failed expectations | drift warnings |", "|---|---|---|---|"]
    for batch, dq in (report.get("data_quality") or {}).items():
        suites = ", ".join(f"{k} ({v['evaluated']})" for k, v in dq["suites"].items()) or "–"
        failed = sum(len(v["failed"]) for v in dq["suites"].values())
        lines.append(f"| {batch} | {suites} | {failed} | {len(dq['drift_warnings'])} |")
    for batch, dq in (report.get("data_quality") or {}).items():
        for suite, v in dq["suites"].items():
            lines += [f"- {batch}/{suite} failed: {f}" for f in v["failed"]]
        lines += [f"- {batch} drift vs {dq['drift_reference']}: {w}" for w in dq["drift_warnings"]]
    reasons = {b: s.get("reasons") for b, s in report["ingest"].items() if s.get("reasons")}
    lines += [f"- {b} quarantined: {r}" for b, r in reasons.items()]
    return lines


def false_alarm_rates(report: dict) -> dict[str, dict[str, float]]:
    """detector -> nuisance type -> false triggers per nuisance-hour (training.metrics; types with any)."""
    detectors = [d for d in report["by_event_type"] if report["by_event_type"][d]]
    types = {
        t
        for d in detectors
        for t, st in report["by_event_type"][d].items()
        if st.get("false_triggers", 0) > 0
    }
    return {
        d: {t: report["by_event_type"][d].get(t, {}).get("per_hour") or 0.0 for t in sorted(types)}
        for d in detectors
    }


def plot_false_alarms(report: dict, out_png: Path, dpi: int) -> None:
    """Grouped bars: false triggers per nuisance-hour by nuisance type, one bar per detector."""
    from flows.plots import grouped_bars

    grouped_bars(
        false_alarm_rates(report),
        out_png,
        dpi,
        xlabel="false triggers per hour of the nuisance in an empty room (1/h)",
        title="False triggers by nuisance type (eval batch)",
    )


def write_turn_report(params: dict, paths: Paths, records: list[dict]) -> dict:
    from flows.report_figures import draw_all
    from flows.report_page import render_page

    report = collect(params, paths, records)
    out = paths.report_dir
    plot_false_alarms(report, out / "plots" / "false_alarms_by_type.png", int(params["report"]["plot_dpi"]))
    report["plots"] = draw_all(report, params, paths, out / "plots")
    atomic_write_text(out / "report.md", render_markdown(report))
    atomic_write_json(out / "report.json", report)
    # the page is rendered from report.json as written (what `flywheel report compare` reads too)
    atomic_write_text(out / PAGE_NAME, render_page(read_json(out / "report.json"), out))
    return {"report": str(out / "report.json"), "page": str(out / PAGE_NAME)}


def artifact_tables(report: dict) -> dict[str, tuple[str, list[dict]]]:
    """The page's tables as Prefect table artifacts: key -> (description, rows)."""
    from flows.report_sections import EPISODE_KEYS

    tables = {
        "turn-detectors": (
            "Detectors on the held-out eval batch",
            [{"detector": n, **row} for n, row in report.get("evaluation", {}).items()],
        ),
        "turn-detector-episodes": (
            "Episode figures per detector (not measured when empty)",
            [
                {"detector": n, **{k: m.get(k) for k in EPISODE_KEYS}}
                for n, m in (report.get("detectors") or {}).items()
                if m
            ],
        ),
        "turn-ingest": (
            "Captures received / ingested / quarantined per batch",
            [
                {
                    "batch": b,
                    **{k: v for k, v in s.items() if k != "reasons"},
                    "reasons": str(s.get("reasons") or {}),
                }
                for b, s in report.get("ingest", {}).items()
            ],
        ),
        "turn-release-gate": (
            "Release gate checks",
            [dict(c) for c in (report.get("release") or {}).get("checks", [])],
        ),
        "turn-calibration": ("Calibration per unit", list(report.get("calibration_units") or [])),
    }
    return {k: v for k, v in tables.items() if v[1]}
