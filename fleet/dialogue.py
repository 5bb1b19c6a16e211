"""Voice-assistant logs on the ultrasound timeline: turns, playback, routines and feedback.

People talk only while present (truth). Playback start/stop follows the plan's music sessions
(which also drive the music distortion in the captures). Routines follow the device's own motion
decisions, so a detector that misses a still reader switches the lights off on them — and a few
seconds later someone says "turn the lights back on". Occasional explicit false-trigger reports
follow motion routines that fired on an empty room.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

INTENTS: dict[str, list[tuple[str, dict, str]]] = {
    "weather": [
        ("what's the weather like", {}, "It's 14 degrees and cloudy."),
        ("will it rain tomorrow", {"date": "tomorrow"}, "No rain expected tomorrow."),
    ],
    "timer": [
        ("set a timer for {n} minutes", {"duration_min": "{n}"}, "Timer set for {n} minutes."),
        ("how much time is left on the timer", {}, "About two minutes left."),
    ],
    "lights": [
        ("turn off the lights", {"action": "off"}, "Okay."),
        ("dim the lights to {n} percent", {"action": "dim", "level": "{n}"}, "Okay."),
    ],
    "music": [("play some {genre}", {"action": "play", "genre": "{genre}"}, "Playing {genre}.")],
    "news": [("what's in the news", {}, "Here are today's headlines.")],
    "volume": [("turn it {dir}", {"direction": "{dir}"}, "Okay.")],
    "question": [("how tall is the eiffel tower", {}, "The Eiffel Tower is 330 metres tall.")],
}
GENRES = ["jazz", "rock", "hip hop", "classical", "lo-fi beats", "dance music"]
WRONG = "Sorry, I didn't get that."


def iso_ms(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class DialogueLog:
    """Collects one device's dialogue events with absolute timestamps."""

    def __init__(self, device_id: str, day_start: dt.datetime, id_prefix: str = ""):
        self.device_id, self.day_start = device_id, day_start
        self.id_prefix = f"{id_prefix}-{device_id}" if id_prefix else device_id  # unique across batches
        self.rows: list[tuple[float, dict]] = []

    def add(self, t_s: float, kind: str, **fields) -> str:
        eid = f"{self.id_prefix}-e{len(self.rows):06d}"
        ts = iso_ms(self.day_start + dt.timedelta(seconds=float(t_s)))
        self.rows.append(
            (t_s, {"event_id": eid, "device_id": self.device_id, "ts": ts, "kind": kind, **fields})
        )
        return eid

    def sorted_rows(self) -> list[dict]:
        return [r for _, r in sorted(self.rows, key=lambda x: x[0])]


def _fill(template, values: dict):
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template.format(**values)


def add_turn(
    log: DialogueLog, t: float, intent: str, rng: np.random.Generator, cfg: dict, fixed=None
) -> None:
    """A turn, and after a wrong answer possibly a rephrase a few seconds later."""
    utter, slots, response = fixed or INTENTS[intent][int(rng.integers(len(INTENTS[intent])))]
    values = {
        "n": int(rng.integers(2, 60)),
        "genre": str(rng.choice(GENRES)),
        "dir": str(rng.choice(["up", "down"])),
    }
    asr = float(np.clip(rng.beta(9, 1.5), 0, 1))
    nlu = float(np.clip(rng.beta(8, 2) * (0.6 + 0.4 * asr), 0, 1))
    wrong = nlu < 0.55 or rng.random() < 0.05
    log.add(
        t,
        "turn",
        utterance=_fill(utter, values),
        asr_confidence=round(asr, 3),
        intent=intent if not wrong else str(rng.choice(list(INTENTS))),
        nlu_confidence=round(nlu, 3),
        slots=_fill(slots, values),
        response=WRONG if wrong else _fill(response, values),
        barge_in=bool(rng.random() < cfg["barge_in_prob"]),
    )
    if wrong and rng.random() < cfg["rephrase_prob"]:
        add_turn(log, t + float(rng.uniform(3, 8)), intent, rng, {**cfg, "rephrase_prob": 0.0})


def during(intervals: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t <= b for a, b in intervals)


def build_dialogue(
    log: DialogueLog,
    presence: list[tuple[float, float]],
    playback: list[tuple[float, float, float]],
    voice_started: list[bool],
    motion_blocks: np.ndarray,
    block_s: float,
    rng: np.random.Generator,
    cfg: dict,
) -> dict:
    """Fill `log` for one device; returns counts of what was generated."""
    rate = cfg["turns_per_present_hour"] / 3600
    for a, b in presence:
        for t in np.sort(rng.uniform(a, b, rng.poisson(rate * (b - a)))):
            add_turn(log, float(t), str(rng.choice(list(INTENTS))), rng, cfg)
    for (t0, t1, vol), voice in zip(playback, voice_started, strict=True):
        if voice and during(presence, t0 - 1.5):
            genre = str(rng.choice(GENRES))
            add_turn(
                log,
                t0 - 1.5,
                "music",
                rng,
                cfg,
                (f"play some {genre}", {"action": "play", "genre": genre}, f"Playing {genre}."),
            )
        log.add(t0, "playback", action="start", volume=vol)
        if during(presence, t1 - 1.0):
            add_turn(log, t1 - 1.0, "music", rng, cfg, ("stop the music", {"action": "stop"}, "Okay."))
        log.add(t1, "playback", action="stop", volume=vol)
    counts = {"lights_back_on": 0, "false_trigger_reports": 0, "routines": 0}
    lights_on, ref = False, -1e18  # ref: when the no-motion timer last restarted
    timeout = cfg["no_motion_timeout_s"]
    end = motion_blocks.size * block_s
    for i in [*np.flatnonzero(motion_blocks), None]:
        t = end if i is None else i * block_s
        # the no-motion timer may have expired (maybe repeatedly) since the last motion
        while lights_on and t - ref >= timeout:
            lights_on, ref = _no_motion(log, ref + timeout, presence, rng, cfg, counts)
        if i is None:
            break
        if not lights_on:
            rid = log.add(t, "routine", routine_id="motion_lights", trigger="motion", action="lights_on")
            counts["routines"] += 1
            lights_on = True
            if not during(presence, t) and rng.random() < cfg["false_trigger_report_prob"]:
                log.add(
                    t + float(rng.uniform(30, 1800)), "feedback", target_event_id=rid, value="false_trigger"
                )
                counts["false_trigger_reports"] += 1
        ref = t
    return counts


def _no_motion(log, t, presence, rng, cfg, counts) -> tuple[bool, float]:
    """Lights off after the timeout; a still person may ask for them back. → (lights on, timer ref)."""
    log.add(t, "routine", routine_id="no_motion_lights", trigger="no_motion", action="lights_off")
    counts["routines"] += 1
    if during(presence, t) and rng.random() < cfg["lights_back_on_prob"]:
        t_back = t + float(rng.uniform(3, 20))
        add_turn(log, t_back, "lights", rng, cfg, ("turn the lights back on", {"action": "on"}, "Okay."))
        counts["lights_back_on"] += 1
        return True, t_back
    return False, t
