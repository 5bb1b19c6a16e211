"""The dialogue self-learning, scored against the simulator's truth: `flywheel self-learning`.

Runs the truth-free pipeline on a batch (flows.field_logs: sessions, failure points; mining.rewrites)
and only then opens truth_dir/dialogue_truth.jsonl to score it:
- isolation: each friction session's true failure point is the earliest interaction in it that
  really failed (fleet.dialogue's records), `correct` when none did; accuracy per class and a
  confusion matrix (plot);
- rewrites: a mined rewrite u → v is correct when the requests behind v meant what those behind u
  meant (majority intent in truth) and v itself was understood (its attempts mostly failed nowhere);
  wins per loss.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import polars as pl

from mining.config import SelfLearningConfig


def read_dialogue_truth(truth_dir: str | os.PathLike) -> list[dict]:
    path = Path(truth_dir) / "dialogue_truth.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no dialogue truth (simulate the batch with this version)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def session_truth(events: pl.DataFrame, truth: list[dict]) -> dict[str, str]:
    """session_id → the earliest really failing interaction's component (`correct` when none)."""
    session_of = dict(zip(events["event_id"], events["session_id"], strict=True))
    ts_of = dict(zip(events["event_id"], events["ts"], strict=True))
    failures: dict[str, list] = {}
    for record in truth:
        ids = [e for e in record["event_ids"] if e in session_of]
        if not ids:
            continue
        sid = session_of[ids[0]]
        failures.setdefault(sid, []).append((record["failure_point"] == "correct", ts_of[ids[0]], record))
    return {sid: min(items, key=lambda x: x[:2])[2]["failure_point"] for sid, items in failures.items()}


def score_isolation(isolation: pl.DataFrame, truth_of: dict[str, str]) -> dict:
    from mining.failure_points import FAILURE_POINTS, confusion_matrix, overall_accuracy, per_class_scores

    true = [truth_of.get(s, "correct") for s in isolation["session_id"]]
    matrix = confusion_matrix(true, isolation["failure_point"].to_list())
    return {
        "sessions": isolation.height,
        "accuracy": overall_accuracy(matrix),
        "per_class": per_class_scores(matrix),
        "classes": list(FAILURE_POINTS),
        "confusion": matrix.tolist(),
    }


def score_rewrites(rewrites: list[dict], turns: pl.DataFrame, truth: list[dict]) -> dict:
    from mining.rewrites import normalise, win_loss

    meant: dict[str, tuple[str, str]] = {}  # event id → (intent meant, component that failed or none)
    for record in truth:
        if record.get("intent") is not None:
            for eid, comp in zip(record["event_ids"], record["components"], strict=True):
                meant[eid] = (record["intent"], comp)
    said: dict[str, list[tuple[str, str]]] = {}
    for eid, utterance in zip(turns["event_id"], turns["utterance"], strict=True):
        if eid in meant:
            said.setdefault(normalise(utterance), []).append(meant[eid])

    def majority(u: str, k: int) -> str | None:
        seen = Counter(x[k] for x in said.get(u, []))
        return seen.most_common(1)[0][0] if seen else None

    rows = []
    for r in rewrites:
        ok = majority(r["utterance"], 0) == majority(r["rewrite"], 0) and majority(r["rewrite"], 1) == "none"
        rows.append({**r, "correct": bool(ok)})
    wins = sum(r["correct"] for r in rows)
    return {
        "rewrites": rows,
        "wins": wins,
        "losses": len(rows) - wins,
        "win_loss": win_loss([r["correct"] for r in rows]),
    }


def self_learning_report(
    raw_dir: str | os.PathLike, truth_dir: str | os.PathLike, learning: SelfLearningConfig
) -> dict:
    """Isolation and rewrites on one batch's logs, then scored against its truth."""
    from flows.field_logs import read_field_logs
    from mining.rewrites import mine_rewrites, request_paths

    logs = read_field_logs(raw_dir, learning)
    paths = request_paths(logs.events, logs.turns, learning)
    rewrites = mine_rewrites(paths, int(learning.rewrite_min_support), float(learning.rewrite_min_gain))
    truth = read_dialogue_truth(truth_dir)  # from here on: scoring only
    return {
        "raw": str(raw_dir),
        "devices": logs.events["device_id"].n_unique(),
        "sessions": logs.events["session_id"].n_unique(),
        "requests": len(paths),
        "isolation": score_isolation(logs.isolation, session_truth(logs.events, truth)),
        "rewrites": score_rewrites(rewrites, logs.turns, truth),
    }


def plot_confusion(isolation: dict, path: str | os.PathLike) -> None:
    """The isolation's confusion matrix (rows: true failure point; columns: isolated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from common.io import atomic_write_bytes

    m = np.asarray(isolation["confusion"])  # [n_classes, n_classes]
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    classes = isolation["classes"]
    ax.set_xticks(range(len(classes)), classes, rotation=40, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    color="black" if share[i, j] < 0.6 else "white",
                )
    ax.set_xlabel("isolated failure point")
    ax.set_ylabel("true failure point (simulator)")
    acc = isolation["accuracy"]
    ax.set_title(f"Failure-point isolation: {isolation['sessions']} friction sessions, accuracy {acc:.3f}")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_markdown(report: dict) -> str:
    iso, rw = report["isolation"], report["rewrites"]
    lines = [
        f"# Dialogue self-learning on {report['raw']}",
        "",
        f"{report['devices']} devices, {report['sessions']} sessions, {report['requests']} voice requests; "
        f"{iso['sessions']} sessions with friction, isolation accuracy {iso['accuracy']:.3f}.",
        "",
        "| failure point | support | accuracy | precision |",
        "|---|---|---|---|",
    ]
    for c, s in iso["per_class"].items():
        lines.append(f"| {c} | {s['support']} | {_fmt(s['accuracy'])} | {_fmt(s['precision'])} |")
    ratio = "no incorrect one" if rw["win_loss"] is None else f"win/loss {rw['win_loss']:.2f}"
    lines += ["", f"Rewrites: {rw['wins']} correct, {rw['losses']} incorrect ({ratio}).", ""]
    lines += [
        "| utterance | rewrite | support | P(success) | P(success) rewrite | correct |",
        "|---|---|---|---|---|---|",
    ]
    for r in rw["rewrites"]:
        lines.append(
            f"| {r['utterance']} | {r['rewrite']} | {r['support']} | {r['p_success']:.2f} | "
            f"{r['p_success_rewrite']:.2f} | {'yes' if r['correct'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
