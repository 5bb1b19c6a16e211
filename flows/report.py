"""The turn report: report.json (DVC metrics), report.md and plots, from what the stages left on disk."""

from __future__ import annotations

from pathlib import Path

from common.io import atomic_path, atomic_write_json, atomic_write_text, read_json
from common.paths import Paths

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
        "by_event_type": {name: r.get("false_triggers_by_type", {}) for name, r in evaluations.items()},
        "release": release,
        "quantization": _load(paths.model(shipped) / "onnx" / "quantization.json"),
        "int8_gate": {m: _load(paths.evaluation(m) / "int8_gate.json") for m in ("seed", "retrained")},
        "budget": _load(paths.model(shipped) / "onnx" / "budget.json"),
        "deployment": _load(paths.deployment / "deploy.json"),
    }


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(report: dict) -> str:
    lines = [f"# Flywheel turn {report['turn']}", ""]
    if report.get("preset"):
        lines += [f"Preset: `{report['preset']}`", ""]
    lines += [
        "## Detectors on the held-out eval batch",
        "",
        "| detector | " + " | ".join(HEADLINE) + " |",
        "|---" * (len(HEADLINE) + 1) + "|",
    ]
    for name, row in report["evaluation"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in HEADLINE) + " |")
    lines += ["", "![false alarms per hour by event type](plots/false_alarms_by_type.png)", ""]
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


def plot_false_alarms(report: dict, out_png: Path) -> None:
    """Grouped bars: false alarms per hour by non-presence event type, one group per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    detectors = [d for d in report["by_event_type"] if report["by_event_type"][d]]
    # false alarms are attributed to non-presence event types (or "empty"): show those that have any
    types = sorted(
        {
            t
            for d in detectors
            for t, st in report["by_event_type"][d].items()
            if st.get("false_triggers", 0) > 0
        }
    )
    fig, ax = plt.subplots(figsize=(max(6, len(types) * 0.9), 4))
    width = 0.8 / max(1, len(detectors))
    for i, det in enumerate(detectors):
        stats = report["by_event_type"][det]
        rate = [stats.get(t, {}).get("per_hour") or 0.0 for t in types]
        ax.bar(np.arange(len(types)) + i * width, rate, width, label=det)
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, types, rotation=45, ha="right")
    ax.set_ylabel("false triggers per nuisance-hour")
    ax.set_title("False triggers by nuisance type (eval batch)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_turn_report(params: dict, paths: Paths, records: list[dict]) -> dict:
    report = collect(params, paths, records)
    out = paths.report_dir
    plot_false_alarms(report, out / "plots" / "false_alarms_by_type.png")
    atomic_write_text(out / "report.md", render_markdown(report))
    atomic_write_json(out / "report.json", report)
    return {"report": str(out / "report.json")}
