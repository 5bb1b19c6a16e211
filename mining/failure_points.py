"""Failure-point isolation: for each dialogue session with friction, the earliest component that failed.

Friction: a rephrase, a barge-in, an error response, negative feedback on a routine (thumbs down,
undo), or someone asking for the lights. Rules over the log's own signals only (confidences, intents,
timing, routine triggers; thresholds in params `mining.self_learning`):

- presence_false_trigger  a motion routine with negative feedback and no sign of anyone nearby
                          (no turn within presence_evidence_s); with one, the complaint was about
                          something else and the routine was `correct`.
- presence_missed         a lights-on request (the detector left a present person in the dark: after
                          a no-motion routine, which is then when it failed, or on arrival).
- voice chains            turns of the session at most rephrase_gap_s apart. A chain whose last turn
                          got an answer (no error response) recovered (`correct`); otherwise its last
                          turn failed: a lone short low-confidence fragment is a `false_wake`; an
                          answer of "no result" the `result`; a "not understood" answer `asr` when
                          the ASR confidence is low or the whole fleet fails on the utterance
                          (fleet_misheard: the rewrite chain's success probability), `nlu` when the
                          NLU confidence is low, else `asr` (the more common failure).
The session's failure point is its earliest failing interaction, `correct` when every one recovered.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from mining.config import SelfLearningConfig
from mining.dialogue_chains import by_session, chain_outcome, is_lights_on, voice_chains

FAILURE_POINTS = (
    "false_wake",
    "asr",
    "nlu",
    "result",
    "presence_false_trigger",
    "presence_missed",
    "correct",
)
PRESENCE_FAILURES = ("presence_false_trigger", "presence_missed")
ISOLATION_SCHEMA = {
    "session_id": pl.String,
    "device_id": pl.String,
    "ts": pl.Datetime("us", "UTC"),  # when the failing interaction began (the session's first friction)
    "failure_point": pl.String,
    "evidence_event_id": pl.String,  # the routine or turn the failure point rests on
    "evidence_ts": pl.Datetime("us", "UTC"),
    "frictions": pl.String,  # what made the session worth a look, comma-separated
}


def learning_params(params: dict) -> SelfLearningConfig:
    """mining.self_learning plus the session gap (ingest.sessions.gap_s): what the self-learning reads."""
    return SelfLearningConfig.from_params(params)


def chain_failure(chain: list[dict], cfg: SelfLearningConfig, misheard: frozenset[str] = frozenset()) -> str:
    """The failure point of a voice chain (`correct` when it recovered).

    misheard: utterances that fail across the fleet (fleet_misheard): the recogniser's recurring
    confusions, whatever confidence it reported.
    """
    if chain_outcome(chain, cfg) == "success":
        return "correct"
    last = chain[-1]
    asr, nlu = last["asr_confidence"] or 0.0, last["nlu_confidence"] or 0.0
    short = len(last["utterance"].split()) <= cfg.false_wake_max_words
    if len(chain) == 1 and short and asr < cfg.false_wake_asr_threshold:
        return "false_wake"
    if last["response"] not in cfg.not_understood_responses:
        return "result"  # understood, and no result to give
    if asr < cfg.asr_threshold or " ".join(last["utterance"].lower().split()) in misheard:
        return "asr"
    if nlu < cfg.nlu_threshold:
        return "nlu"
    return "asr"  # not understood although both were confident: the recogniser fails far more often


def fleet_misheard(paths: list[tuple[list[str], str]], cfg: SelfLearningConfig) -> frozenset[str]:
    """Utterances said in at least rewrite_min_support requests across the fleet that end in success
    less often than misheard_max_success (absorbing chain, mining.rewrites): recurring mishearings."""
    from mining.rewrites import chain_from_paths

    if not paths:
        return frozenset()
    chain = chain_from_paths(paths)
    p_success = chain.absorption()[:, 0]
    seen: dict[str, int] = {}
    for seq, _ in paths:
        for u in set(seq):
            seen[u] = seen.get(u, 0) + 1
    return frozenset(
        u
        for u, p in zip(chain.states, p_success, strict=True)
        if seen[u] >= cfg.rewrite_min_support and p < cfg.misheard_max_success
    )


def chain_frictions(chain: list[dict], cfg: SelfLearningConfig) -> list[str]:
    out = []
    if len(chain) > 1:
        out.append("rephrase")
    if any(t["barge_in"] for t in chain):
        out.append("barge_in")
    if any(t["response"] in cfg.error_responses for t in chain):
        out.append("error_response")
    return out


def isolate(
    events: pl.DataFrame,
    turns: pl.DataFrame,
    routines: pl.DataFrame,
    feedback: pl.DataFrame,
    cfg: SelfLearningConfig,
) -> pl.DataFrame:
    """One row per session with friction (ISOLATION_SCHEMA). events: ingest.sessions.session_events."""
    negative = {str(v).lower() for v in cfg.negative_feedback}
    turns_of = by_session(turns, events)
    motion = routines.filter(pl.col("trigger") == "motion")
    complaints = feedback.filter(pl.col("value").is_in(list(negative))).select(
        pl.col("target_event_id").alias("event_id")
    )
    flagged = by_session(motion.join(complaints.unique(), on="event_id", how="inner"), events)
    no_motion_of = by_session(routines.filter(pl.col("trigger") == "no_motion"), events)
    back_on = dt.timedelta(seconds=float(cfg.lights_back_on_s))
    device_turns: dict[str, np.ndarray] = {
        d: g["ts"].to_numpy() for (d,), g in turns.sort("ts").group_by("device_id", maintain_order=True)
    }
    nearby = np.timedelta64(int(cfg.presence_evidence_s * 1e6), "us")
    rows = []
    device_of = dict(zip(events["session_id"], events["device_id"], strict=True))
    from mining.rewrites import request_paths

    misheard = fleet_misheard(request_paths(events, turns, cfg), cfg)
    for sid in sorted(set(turns_of) | set(flagged)):
        found: list[tuple[dt.datetime, str, dict, list[str]]] = []  # (ts, failure point, evidence, frictions)
        for routine in flagged.get(sid, []):
            near = device_turns.get(routine["device_id"], np.array([], "datetime64[us]"))
            t = np.datetime64(routine["ts"].replace(tzinfo=None), "us")
            someone = bool(np.any(np.abs(near - t) <= nearby)) if near.size else False
            kind = "correct" if someone else "presence_false_trigger"
            found.append((routine["ts"], kind, routine, ["negative_feedback"]))
        session_turns = turns_of.get(sid, [])
        offs = [r["ts"] for r in no_motion_of.get(sid, [])]
        for turn in session_turns:
            if is_lights_on(turn["utterance"]):
                # lights back on: the detector failed when the no-motion routine switched them off
                before = [o for o in offs if dt.timedelta(0) <= turn["ts"] - o <= back_on]
                start = max(before) if before else turn["ts"]
                found.append((start, "presence_missed", turn, ["lights_on_request"]))
        speech = [t for t in session_turns if not is_lights_on(t["utterance"])]
        for chain in voice_chains(speech, cfg.rephrase_gap_s):
            frictions = chain_frictions(chain, cfg)
            if frictions:
                kind = chain_failure(chain, cfg, misheard)
                found.append((chain[0]["ts"], kind, chain[-1], frictions))
        if not found:
            continue
        found.sort(key=lambda f: (f[1] == "correct", f[0]))  # the earliest failure; else the first friction
        ts, kind, evidence, _ = found[0]
        frictions = sorted({f for item in found for f in item[3]})
        rows.append(
            (sid, device_of[sid], ts, kind, evidence["event_id"], evidence["ts"], ",".join(frictions))
        )
    return pl.DataFrame(rows, schema=ISOLATION_SCHEMA, orient="row").sort(["device_id", "ts", "session_id"])


def confusion_matrix(true: list[str], predicted: list[str], classes=FAILURE_POINTS) -> np.ndarray:
    """int64 [n_classes, n_classes]: rows = true class, columns = isolated class."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        out[index[t], index[p]] += 1
    return out


def per_class_scores(matrix: np.ndarray, classes=FAILURE_POINTS) -> dict[str, dict]:
    """Per class: support, accuracy (recall: share of the class isolated right) and precision."""
    out = {}
    for i, c in enumerate(classes):
        support, called = int(matrix[i].sum()), int(matrix[:, i].sum())
        out[c] = {
            "support": support,
            "accuracy": float(matrix[i, i] / support) if support else None,
            "precision": float(matrix[i, i] / called) if called else None,
        }
    return out


def overall_accuracy(matrix: np.ndarray) -> float | None:
    total = int(matrix.sum())
    return float(np.trace(matrix) / total) if total else None
