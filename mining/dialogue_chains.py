"""Dialogue requests as chains of turns: the small pieces failure-point isolation and rewrite mining share.

A request is a chain of turns at most rephrase_gap_s apart; it succeeds when its last turn got an answer
(no error response). Sessions group a device's events (ingest/sessions.py); by_session reads them back.
"""

from __future__ import annotations

import polars as pl

from mining.config import SelfLearningConfig


def is_lights_on(utterance: str) -> bool:
    words = utterance.lower().replace("'", " ").split()
    return any(w in ("light", "lights") for w in words) and "on" in words


def voice_chains(turns: list[dict], gap_s: float) -> list[list[dict]]:
    """Turns (sorted by time, lights requests left out) split where the next comes more than gap_s later."""
    chains: list[list[dict]] = []
    for turn in turns:
        if chains and (turn["ts"] - chains[-1][-1]["ts"]).total_seconds() <= gap_s:
            chains[-1].append(turn)
        else:
            chains.append([turn])
    return chains


def chain_outcome(chain: list[dict], cfg: SelfLearningConfig) -> str:
    """success | abandon: did the request's last turn get an answer (not an error response)?

    A barge-in on an answer is no verdict by itself: users cut off answers they already have.
    """
    return "abandon" if chain[-1]["response"] in cfg.error_responses else "success"


def by_session(frame: pl.DataFrame, events: pl.DataFrame) -> dict[str, list[dict]]:
    joined = frame.join(events.select("event_id", "session_id"), on="event_id", how="inner").sort("ts")
    out: dict[str, list[dict]] = {}
    for row in joined.iter_rows(named=True):
        out.setdefault(row["session_id"], []).append(row)
    return out
