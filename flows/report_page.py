"""The turn report as one self-contained HTML page (CSS inline, plots inline as base64 PNG, no network).

`render_page` draws one turn from its report.json and plots/; `render_compare` puts two turns'
sections side by side. Each section is a small function of (report, images) so a key's name is
adapted in one place; a section whose figures the turn did not produce says so.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NOT_MEASURED = "not measured in this turn"

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
header { background: #1f2a38; color: #fff; padding: 16px 28px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #c8d0da; font-size: 14px; }
nav { padding: 8px 28px; background: #e9edf2; font-size: 13px; }
nav a { margin-right: 14px; color: #1f4f8a; text-decoration: none; }
main { padding: 8px 28px 40px; }
section { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; margin: 16px 0;
          padding: 12px 18px; }
section h2 { font-size: 18px; margin: 4px 0 10px; }
h3 { font-size: 15px; margin: 12px 0 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }
th, td { border: 1px solid #dde2e8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
.note { color: #7a5b00; background: #fff6d6; border: 1px solid #f0dc9a; padding: 4px 8px;
        display: inline-block; border-radius: 4px; font-size: 13px; }
.ok { color: #1d7a33; font-weight: bold; }
.bad { color: #b3261e; font-weight: bold; }
code { font-size: 12px; word-break: break-all; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.pair > div { min-width: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
"""


@dataclass(frozen=True)
class Images:
    """Inline PNGs of one turn's plots/ folder as <img> tags."""

    plots_dir: Path
    names: dict  # section -> [png names] (report.json's "plots")

    def tags(self, section: str, alt: str) -> str:
        out = []
        for name in self.names.get(section, []):
            png = (self.plots_dir / name).read_bytes()
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}: {_e(name)}">')
        return "\n".join(out)


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value, digits: int = 3) -> str:
    """A figure as the page prints it (– for missing)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(fmt(c))}</td>'
            if isinstance(c, int | float) and not isinstance(c, bool)
            else f"<td>{_e(fmt(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def note(text: str = NOT_MEASURED) -> str:
    return f'<p class="note">{_e(text)}</p>'


# --- sections: (report, images) -> html -----------------------------------------------------------


def detectors_section(report: dict, img: Images) -> str:
    from flows.report_sections import EPISODE_FIGURES, in_detector_order

    measured = in_detector_order({n: m for n, m in (report.get("detectors") or {}).items() if m})
    parts = []
    if measured:
        rows = [[label, *(m.get(key) for m in measured.values())] for key, label in EPISODE_FIGURES.items()]
        parts.append(table(["episode figure", *measured], rows))
    else:
        parts.append(note(f"episode figures: {NOT_MEASURED}"))
    tags = img.tags("det", "detection-error trade-off")
    parts.append(tags or note(f"detection-error trade-off: {NOT_MEASURED}"))
    curves = in_detector_order(report.get("det_curves") or {})
    ops = [
        [
            n,
            *(
                c["operating_point"].get(k)
                for k in ("threshold", "false_triggers_per_empty_hour", "missed_entry_rate")
            ),
        ]
        for n, c in curves.items()
        if c and c.get("operating_point")
    ]
    if ops:
        parts.append("<h3>Operating points</h3>")
        header = ["detector", "threshold", "false triggers per empty hour (1/h)", "missed entry rate"]
        parts.append(table(header, ops))
    return "\n".join(parts)


def false_triggers_section(report: dict, img: Images) -> str:
    from flows.report_sections import in_detector_order

    by_det = in_detector_order({d: t for d, t in (report.get("false_triggers_by_type") or {}).items() if t})
    if not by_det:
        return note(f"false triggers by nuisance type: {NOT_MEASURED}")
    types = sorted({t for per in by_det.values() for t in per})
    rows = [[t, *(by_det[d].get(t, {}).get("per_hour") for d in by_det)] for t in types]
    header = ["nuisance type", *(f"{d} (1/nuisance-hour)" for d in by_det)]
    return img.tags("false_triggers", "false triggers by nuisance type") + table(header, rows)


def gallery_section(report: dict, img: Images) -> str:
    gallery = report.get("gallery") or {}
    parts = ["<h3>Mined picks per strategy</h3>"]
    if gallery.get("picks"):
        parts.append(
            "<p>Doppler spectrograms of each strategy's first picks, with the label the field labelling "
            "gave them and the mining model's p(present).</p>"
        )
        parts.append(img.tags("gallery", "Doppler spectrograms"))
    else:
        parts.append(note("no picks in this turn"))
    parts.append("<h3>The eval's worst false triggers</h3>")
    triggers = gallery.get("false_triggers") or []
    if triggers:
        rows = [
            [r.get("device_id"), r.get("capture_id"), r.get("t_s"), r.get("event_type"), r.get("score")]
            for r in triggers
        ]
        parts.append(table(["device", "capture", "t (s)", "event type", "p(present)"], rows))
    else:
        parts.append(note(f"false-trigger episodes: {NOT_MEASURED}"))
    return "\n".join(parts)


def data_quality_section(report: dict, img: Images) -> str:
    ingest = report.get("ingest") or {}
    if not ingest:
        return note("no ingest in this turn")
    rows = [
        [
            b,
            s.get("received"),
            s.get("ingested"),
            s.get("quarantined"),
            s.get("already_present"),
            "; ".join(f"{k}: {v}" for k, v in (s.get("reasons") or {}).items()) or "–",
        ]
        for b, s in ingest.items()
    ]
    parts = [
        img.tags("ingest", "ingest per batch"),
        table(
            ["batch", "received", "ingested", "quarantined", "already present", "quarantine reasons"], rows
        ),
    ]
    dq_rows = []
    for batch, dq in (report.get("data_quality") or {}).items():
        for suite, v in dq["suites"].items():
            failed = "; ".join(str(f) for f in v["failed"]) or "none"
            dq_rows.append([batch, suite, v.get("evaluated"), failed])
        for w in dq.get("drift_warnings", []):
            dq_rows.append([batch, f"drift vs {dq.get('drift_reference')}", None, str(w)])
    parts.append("<h3>Expectations (great-expectations) and drift</h3>")
    parts.append(
        table(["batch", "suite", "expectations evaluated", "failed"], dq_rows) if dq_rows else note()
    )
    return "\n".join(parts)


def release_section(report: dict, img: Images) -> str:
    release = report.get("release")
    parts = []
    if release:
        parts.append(f"<p>The bundle ships <b>{_e(release['shipped'])}</b> ({_e(release['reason'])}).</p>")
        rows = [
            [
                c["check"],
                c.get("candidate"),
                c.get("incumbent"),
                c.get("limit"),
                "not measured" if c["passed"] is None else ("yes" if c["passed"] else "NO"),
            ]
            for c in release["checks"]
        ]
        parts.append(table(["check", release["candidate"], release["incumbent"], "limit", "passed"], rows))
    else:
        parts.append(note("release gate: not run in this turn"))
    parts.append("<h3>Staged rollout</h3>")
    ro = report.get("rollout")
    if ro:
        parts.append(
            f"<p>Outcome <b>{_e(ro['outcome'])}</b>; decision log <code>{_e(ro['decision_log'])}</code></p>"
        )
        numbers = ro.get("canary_numbers") or {}
        parts.append(table(["canary figure", "value"], [[k, v] for k, v in numbers.items()]))
        parts.append(
            table(
                ["step", "decision", "reasons"],
                [[d["step"], d["decision"], "; ".join(d.get("reasons") or [])] for d in ro["decisions"]],
            )
        )
    else:
        parts.append(note("no rollout of this turn's bundle"))
    return "\n".join(parts)


def dsp_section(report: dict, img: Images) -> str:
    parts = ["<h3>MBDP crossover</h3>"]
    xo = report.get("mbdp")
    if xo:
        crossovers = ", ".join(f"{f:.0f}" for f in xo["crossovers_hz"])
        parts.append(f"<p>Profile {_e(xo.get('profile'))}: LR4 splits at {_e(crossovers)} Hz.</p>")
        parts.append(img.tags("mbdp", "MBDP crossover magnitude response"))
    else:
        parts.append(note("no bundle in this turn"))
    parts.append("<h3>Calibration per unit</h3>")
    units = report.get("calibration_units") or []
    if units:
        parts.append(img.tags("calibration", "calibration per unit"))
        rows = [
            [
                u["device"],
                u["carrier_hz"],
                u["emission_db"],
                u.get("snr_db"),
                u.get("interferers"),
                u.get("action"),
            ]
            for u in units
        ]
        parts.append(
            table(["unit", "carrier (Hz)", "emission (dB FS)", "SNR (dB)", "interferers", "action"], rows)
        )
    else:
        parts.append(note("no unit calibrated in this turn"))
    return "\n".join(parts)


def timings_section(report: dict, img: Images) -> str:
    seconds = report.get("stage_seconds") or {}
    if not seconds:
        return note("no stage records")
    from flows.report_figures import by_duration

    rows = [[n, float(s)] for n, s in by_duration(seconds).items()]
    return img.tags("timings", "stage timings") + table(["stage", "seconds"], rows)


def lineage_section(report: dict, img: Images) -> str:
    lin = report.get("lineage")
    if not lin:
        return note("no bundle in this turn")
    rows = [
        ["bundle", lin["bundle"]],
        ["bundle sha256", lin["bundle_sha256"]],
        ["version / release counter", f"{lin.get('version')} / {lin.get('release_counter')}"],
        ["model", lin.get("model")],
        ["git revision", lin.get("git_revision")],
        ["params hash", lin.get("params_hash")],
        *[[f"data: {k}", v] for k, v in lin.get("data_hashes", {}).items()],
    ]
    return table(["what", "value"], rows)


SECTIONS: tuple[tuple[str, str, Callable[[dict, Images], str]], ...] = (
    ("detectors", "Detectors on the eval batch", detectors_section),
    ("false-triggers", "False triggers by nuisance type", false_triggers_section),
    ("gallery", "Gallery", gallery_section),
    ("data-quality", "Data quality", data_quality_section),
    ("release", "Release decision and rollout", release_section),
    ("dsp", "MBDP and calibration", dsp_section),
    ("timings", "Stage timings", timings_section),
    ("lineage", "Lineage", lineage_section),
)


def _document(title: str, subtitle: str, body: str) -> str:
    links = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name, _ in SECTIONS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # no request may leave the page: images are data: URIs, nothing else is fetched
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header><nav>{links}</nav>"
        f"<main>{body}</main></body></html>\n"
    )


def _subtitle(report: dict) -> str:
    shipped = (report.get("release") or {}).get("shipped", "–")
    return f"preset {report.get('preset') or 'default'} · bundle ships {shipped}"


def render_page(report: dict, report_dir: Path) -> str:
    """One turn's page; report is its report.json, report_dir holds its plots/."""
    img = Images(report_dir / "plots", report.get("plots") or {})
    body = "".join(
        f'<section id="{sid}"><h2>{_e(name)}</h2>{render(report, img)}</section>'
        for sid, name, render in SECTIONS
    )
    return _document(f"Flywheel turn {report['turn']}", _subtitle(report), body)


def render_compare(a: tuple[dict, Path], b: tuple[dict, Path]) -> str:
    """Two turns' sections side by side: a and b are (report.json content, report folder)."""
    (ra, da), (rb, db) = a, b
    ia = Images(da / "plots", ra.get("plots") or {})
    ib = Images(db / "plots", rb.get("plots") or {})
    body = "".join(
        f'<section id="{sid}"><h2>{_e(name)}</h2><div class="pair">'
        f"<div><h3>{_e(ra['turn'])}</h3>{render(ra, ia)}</div>"
        f"<div><h3>{_e(rb['turn'])}</h3>{render(rb, ib)}</div></div></section>"
        for sid, name, render in SECTIONS
    )
    subtitle = f"{ra['turn']}: {_subtitle(ra)} | {rb['turn']}: {_subtitle(rb)}"
    return _document(f"Flywheel turns {ra['turn']} and {rb['turn']}", subtitle, body)
