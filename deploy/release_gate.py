"""Release gate: which of a turn's models the bundle ships, the retrained candidate or the incumbent.

A retrained model is not better just because it saw more labels: the measured flywheel shows turns
that trade several points of recall for a few false alarms an hour. So the candidate ships only when,
on the same held-out eval batch and with the int8 model the device runs (figures of training.metrics),
it is
- numerically sound: its int8 decisions agree with its float model (the export's int8 gate), and
- non-inferior on entries: its entry recall at most `max_recall_drop` (absolute) below the
  incumbent's, and
- no worse on false triggers: false triggers per empty hour at most `max_fa_ratio` times the
  incumbent's, and
- no worse on continued presence: false absences per occupied hour at most
  `max_false_absence_ratio` times the incumbent's.
Otherwise the incumbent ships, and the decision says which check failed. A model whose int8 gate failed
never ships; when neither model passes it there is nothing safe to ship (ReleaseGateError). A figure the
eval batch cannot measure (no minor-motion events, no empty-room time) is reported as not measured and
does not decide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runtime.config import config_from_dict


class ReleaseGateError(ValueError):
    """No model of the turn may ship (neither passes its int8 gate), or the gate's inputs are unusable."""


@dataclass(frozen=True)
class ReleaseRules:
    """params.yaml `package.release`; every field required."""

    enabled: bool
    max_recall_drop: float  # absolute, on entry recall
    max_fa_ratio: float  # candidate false triggers per empty hour at most this many times the incumbent's
    max_false_absence_ratio: float  # the same for false absences per occupied hour

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_recall_drop <= 1.0:
            raise ValueError(f"release.max_recall_drop must lie in [0, 1], got {self.max_recall_drop}")
        if self.max_fa_ratio <= 0.0 or self.max_false_absence_ratio <= 0.0:
            raise ValueError("release.max_fa_ratio and max_false_absence_ratio must be > 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReleaseRules:
        return config_from_dict(cls, d, "package.release")


@dataclass(frozen=True)
class ModelEvidence:
    """What the turn measured of one model: its int8 evaluation on the eval batch and its int8 gate."""

    name: str
    evaluation: dict  # training.evaluate result of the int8 model (training.metrics figures)
    int8_passed: bool

    def metric(self, key: str) -> float | None:
        value = self.evaluation.get(key)
        return None if value is None else float(value)


def _check(name: str, candidate: float | None, incumbent: float | None, limit: float | None, ok) -> dict:
    measured = candidate is not None and incumbent is not None and limit is not None
    return {
        "check": name,
        "candidate": candidate,
        "incumbent": incumbent,
        "limit": limit,
        "passed": bool(ok(candidate, limit)) if measured else None,  # None: not measured, does not decide
    }


def _checks(candidate: ModelEvidence, incumbent: ModelEvidence, rules: ReleaseRules) -> list[dict]:
    checks = [
        {
            "check": "int8_gate",
            "candidate": candidate.int8_passed,
            "incumbent": incumbent.int8_passed,
            "limit": None,
            "passed": candidate.int8_passed,
        }
    ]
    inc = incumbent.metric("entry_recall")
    floor = None if inc is None else inc - rules.max_recall_drop
    checks.append(
        _check("entry_recall", candidate.metric("entry_recall"), inc, floor, lambda c, lim: c >= lim - 1e-12)
    )
    for key, ratio in (
        ("false_triggers_per_empty_hour", rules.max_fa_ratio),
        ("false_absences_per_occupied_hour", rules.max_false_absence_ratio),
    ):
        inc = incumbent.metric(key)
        ceiling = None if inc is None else inc * ratio
        checks.append(_check(key, candidate.metric(key), inc, ceiling, lambda c, lim: c <= lim + 1e-12))
    return checks


def _describe(check: dict) -> str:
    name, c, i, lim = check["check"], check["candidate"], check["incumbent"], check["limit"]
    if name == "int8_gate":
        return "its int8 model disagrees with its float model (int8 gate failed)"
    if name == "entry_recall":
        return (
            f"entry recall {c:.3f} is below the incumbent's {i:.3f} minus the allowed drop (floor {lim:.3f})"
        )
    what = name.replace("_", " ")
    return f"{what} {c:.2f} exceed the limit {lim:.2f} (incumbent {i:.2f})"


def decide_release(candidate: ModelEvidence, incumbent: ModelEvidence, rules: ReleaseRules) -> dict:
    """The decision as plain JSON: shipped model name, the checks, and why."""
    checks = _checks(candidate, incumbent, rules)
    failed = [c for c in checks if c["passed"] is False]
    if not rules.enabled:
        if not candidate.int8_passed:
            raise ReleaseGateError(
                f"{candidate.name}: int8 gate failed; the release gate is off, nothing ships"
            )
        shipped, reason = candidate.name, "release gate disabled: the candidate ships unchecked"
    elif not failed:
        shipped = candidate.name
        unmeasured = [c["check"] for c in checks if c["passed"] is None]
        reason = "candidate passes every check" + (
            f" (not measured on the eval batch: {', '.join(unmeasured)})" if unmeasured else ""
        )
    else:
        if not incumbent.int8_passed:
            raise ReleaseGateError(
                f"neither model may ship: {candidate.name} fails the release gate "
                f"({_describe(failed[0])}) and {incumbent.name}'s int8 gate failed"
            )
        shipped = incumbent.name
        reason = f"{candidate.name} held back: " + "; ".join(_describe(c) for c in failed)
    return {
        "shipped": shipped,
        "candidate": candidate.name,
        "incumbent": incumbent.name,
        "reason": reason,
        "rules": asdict(rules),
        "checks": checks,
    }
