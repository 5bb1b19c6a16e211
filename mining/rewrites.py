"""Rewrite mining: rephrase chains across devices as an absorbing Markov chain.

States are utterances as recognised; a request's turns (mining.failure_points.voice_chains) walk
from one utterance to the next and end absorbed in `success` (the last turn got a confident,
non-error answer) or `abandon`. With the transient block Q and the transient-to-absorbing block R
of the row-normalised transition counts, N = (I - Q)^-1 and B = N R: B[u, success] is how likely a
request that reaches utterance u ends in success. The rewrite of a failing utterance u is the
utterance v seen after u in at least min_support chains with the highest B[v, success], kept when
it beats B[u, success] by min_gain.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from mining.config import SelfLearningConfig

ABSORBING = ("success", "abandon")


@dataclass(frozen=True)
class AbsorbingChain:
    states: list[str]  # transient states (utterances)
    q: np.ndarray  # float64 [n, n] transient -> transient
    r: np.ndarray  # float64 [n, 2] transient -> (success, abandon)

    def fundamental(self) -> np.ndarray:
        """N = (I - Q)^-1, float64 [n, n]: expected visits to each state before absorption."""
        return np.linalg.inv(np.eye(len(self.states)) - self.q)

    def absorption(self) -> np.ndarray:
        """B = N R, float64 [n, 2]: probability of ending in success / abandon from each state
        (solved as (I - Q) B = R, without forming N)."""
        return np.linalg.solve(np.eye(len(self.states)) - self.q, self.r)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def chain_from_paths(paths: list[tuple[list[str], str]]) -> AbsorbingChain:
    """paths: (utterances in order, "success" | "abandon") per request → the chain of their counts."""
    states = sorted({u for seq, _ in paths for u in seq})
    index = {s: i for i, s in enumerate(states)}
    counts = np.zeros((len(states), len(states) + 2))
    for seq, end in paths:
        if end not in ABSORBING:
            raise ValueError(f"a path ends in {end!r}, not one of {ABSORBING}")
        for a, b in itertools.pairwise(seq):
            counts[index[a], index[b]] += 1
        counts[index[seq[-1]], len(states) + ABSORBING.index(end)] += 1
    probs = counts / counts.sum(axis=1, keepdims=True)
    return AbsorbingChain(states, probs[:, : len(states)], probs[:, len(states) :])


def follow_support(paths: list[tuple[list[str], str]]) -> dict[tuple[str, str], int]:
    """(u, v) → number of requests in which v was said after u (v != u)."""
    support: dict[tuple[str, str], int] = {}
    for seq, _ in paths:
        pairs = {(a, b) for i, a in enumerate(seq) for b in seq[i + 1 :] if b != a}
        for pair in pairs:
            support[pair] = support.get(pair, 0) + 1
    return support


def mine_rewrites(paths: list[tuple[list[str], str]], min_support: int, min_gain: float) -> list[dict]:
    """The best rewrite of each failing utterance.

    → [{utterance, rewrite, support, p_success, p_success_rewrite}] sorted by utterance.
    """
    if not paths:
        return []
    chain = chain_from_paths(paths)
    p_success = chain.absorption()[:, 0]
    index = {s: i for i, s in enumerate(chain.states)}
    best: dict[str, dict] = {}
    for (u, v), n in sorted(follow_support(paths).items()):
        if n < min_support or p_success[index[v]] < p_success[index[u]] + min_gain:
            continue
        cand = {
            "utterance": u,
            "rewrite": v,
            "support": n,
            "p_success": float(p_success[index[u]]),
            "p_success_rewrite": float(p_success[index[v]]),
        }
        held = best.get(u)
        if held is None or (cand["p_success_rewrite"], cand["support"]) > (
            held["p_success_rewrite"],
            held["support"],
        ):
            best[u] = cand
    return [best[u] for u in sorted(best)]


def win_loss(correct: list[bool]) -> float | None:
    """Correct rewrites per incorrect one (None with no incorrect one to divide by)."""
    wins, losses = sum(correct), len(correct) - sum(correct)
    return wins / losses if losses else None


def request_paths(events, turns, cfg: SelfLearningConfig) -> list[tuple[list[str], str]]:
    """Every voice request of the logs as (recognised utterances in order, success | abandon).

    events: ingest.sessions.session_events; turns: the dialogue table. Lights requests are left out
    (they are presence signals, not requests that can be rephrased).
    """
    from mining.dialogue_chains import by_session, chain_outcome, is_lights_on, voice_chains

    paths = []
    for _, session_turns in sorted(by_session(turns, events).items()):
        speech = [t for t in session_turns if not is_lights_on(t["utterance"])]
        for chain in voice_chains(speech, cfg.rephrase_gap_s):
            paths.append(([normalise(t["utterance"]) for t in chain], chain_outcome(chain, cfg)))
    return paths
