"""Voice-assistant logs on the ultrasound timeline: turns, playback, routines and feedback, plus truth.

People talk only while present (truth). Playback start/stop follows the plan's music sessions
(which also drive the music distortion in the captures). Routines follow the device's own motion
decisions, so a detector that misses a still reader switches the lights off on them — and a few
seconds later someone says "turn the lights back on"; one that misses an arrival leaves a person in
the dark, who asks for the lights. Motion routines that fired on an empty room are sometimes
reported (thumbs down) or undone in the app; now and then a correct one is thumbed down too.

A user's request is a *goal* of one or more attempts. Each attempt fails in at most one component:
ASR (the fleet's confusion table: the same phrases are misheard the same way on every device, plus
rare one-off errors), NLU (wrong intent), or the result (right intent, unhelpful answer). After a
failure the user may rephrase (another wording of the same request, or the same words again) or
give up. False wakes (the device waking on a fragment of room talk) draw a barge-in "stop".
What really failed is recorded per interaction in `truth` (fleet/simulate.py writes it to
truth_dir/dialogue_truth.jsonl), never in the raw log.
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


# phrases ASR is prone to mishear, each with the mishearings it may settle on (a fleet picks one)
MISHEARINGS: dict[str, list[str]] = {
    "what's the weather like": ["what's the whether like", "watch the weather light"],
    "will it rain tomorrow": ["will it reign tomorrow", "we'll train tomorrow"],
    "turn off the lights": ["turn of the flights", "turn off the lice"],
    "what's in the news": ["what's in the noose", "watson the news"],
    "how tall is the eiffel tower": ["how tall is the eiffel flower", "how tall is the awful tower"],
    "how much time is left on the timer": ["how much time is left on the time or"],
    "stop the music": ["stop the museum", "stop them music"],
}
# other wordings a user tries after a failure (recognised as said)
REPHRASINGS: dict[str, list[str]] = {
    "what's the weather like": ["what is the weather", "weather forecast please"],
    "will it rain tomorrow": ["is it going to rain tomorrow", "rain forecast for tomorrow"],
    "turn off the lights": ["switch the lights off", "lights off"],
    "what's in the news": ["read me the news", "news headlines"],
    "how tall is the eiffel tower": ["what is the height of the eiffel tower", "eiffel tower height"],
    "how much time is left on the timer": ["how long is left on my timer", "timer status"],
    "stop the music": ["stop playing", "pause the music"],
}
FALSE_WAKE_TEXT = ["uh", "what", "okay so", "and then", "no", "right"]
RESULT_FAIL = ["Sorry, I couldn't find that.", "I don't know that one."]
STOP = ("stop", {"action": "stop"}, "")


def confusion_table(fleet_seed: int, cfg: dict) -> dict[str, str]:
    """The fleet's recurring ASR confusions: phrase -> what it is heard as (same on every device)."""
    rng = np.random.default_rng([int(fleet_seed), 0xA5])
    table = {}
    for phrase, heard in MISHEARINGS.items():
        if rng.random() < cfg["confusable_phrase_prob"]:
            table[phrase] = heard[int(rng.integers(len(heard)))]
    return table


class Goal:
    """What a user wanted in one request, for the truth record."""

    def __init__(self, intent: str, template: tuple[str, dict, str], values: dict):
        self.intent, self.template, self.values = intent, template, values
        self.attempts: list[dict] = []


def _attempt_component(spoken: str, rng, cfg: dict, confusions: dict[str, str]) -> str:
    """Which component fails this attempt ("none": it works)."""
    if spoken in confusions and rng.random() < cfg["confusion_prob"]:
        return "asr"
    u = rng.random()
    if u < cfg["asr_error_prob"]:
        return "asr"
    if u < cfg["asr_error_prob"] + cfg["nlu_error_prob"]:
        return "nlu"
    if u < cfg["asr_error_prob"] + cfg["nlu_error_prob"] + cfg["result_error_prob"]:
        return "result"
    return "none"


def _garble(text: str, rng) -> str:
    """A one-off misrecognition: a word dropped or doubled."""
    words = text.split()
    k = int(rng.integers(len(words)))
    return " ".join(words[:k] + words[k + 1 :] if len(words) > 2 else [*words, words[-1]])


def add_turn(
    log: DialogueLog,
    t: float,
    intent: str,
    rng: np.random.Generator,
    cfg: dict,
    fixed=None,
    truth: list | None = None,
    confusions: dict[str, str] | None = None,
) -> float:
    """A goal: one turn, and after a failure possibly rephrases a few seconds apart. → last turn's time."""
    template = fixed or INTENTS[intent][int(rng.integers(len(INTENTS[intent])))]
    values = {
        "n": int(rng.integers(2, 60)),
        "genre": str(rng.choice(GENRES)),
        "dir": str(rng.choice(["up", "down"])),
    }
    utter, slots, response = template
    phrase = _fill(utter, values)
    spoken, ids, components = phrase, [], []
    outcome = "abandon"
    for attempt in range(int(cfg["max_attempts"])):
        component = _attempt_component(spoken, rng, cfg, confusions or {})
        heard = spoken
        asr = float(np.clip(rng.beta(9, 1.5), 0, 1))
        if component == "asr":
            heard = (confusions or {}).get(spoken) or _garble(spoken, rng)
            asr = float(np.clip(rng.beta(4, 3), 0, 1))
        nlu = float(np.clip(rng.beta(8, 2) * (0.6 + 0.4 * asr), 0, 1))
        if component == "nlu":
            nlu = float(np.clip(rng.beta(3, 5), 0, 1))
        got_intent = intent if component in ("none", "result") else str(rng.choice(list(INTENTS)))
        reply = _fill(response, values)
        if component in ("asr", "nlu"):
            reply = WRONG
        elif component == "result":
            reply = str(rng.choice(RESULT_FAIL)) if rng.random() < 0.5 else "Here is what I found."
        failed = component != "none"
        barge = rng.random() < (cfg["barge_in_on_failure_prob"] if failed else cfg["barge_in_prob"])
        ids.append(
            log.add(
                t,
                "turn",
                utterance=heard,
                asr_confidence=round(asr, 3),
                intent=got_intent,
                nlu_confidence=round(nlu, 3),
                slots=_fill(slots, values),
                response=reply,
                barge_in=bool(barge),
            )
        )
        components.append(component)
        if not failed:
            outcome = "success"
            break
        if attempt + 1 >= int(cfg["max_attempts"]) or rng.random() >= cfg["rephrase_prob"]:
            break
        t += float(rng.uniform(3, 8))
        others = REPHRASINGS.get(phrase, [])
        if others and rng.random() >= cfg["repeat_prob"]:
            spoken = str(rng.choice(others))
    if truth is not None:
        truth.append(
            {
                "kind": "voice",
                "event_ids": ids,
                "intent": intent,
                "said": phrase,
                "components": components,
                "outcome": outcome,
                # a recovered error is not a failure; else the component the user gave up on
                "failure_point": "correct" if outcome == "success" else components[-1],
            }
        )
    return t


def add_false_wake(log: DialogueLog, t: float, rng, cfg: dict, truth: list | None) -> None:
    """The device wakes on room talk; a present user usually cuts it off."""
    barge = rng.random() < cfg["false_wake_barge_in_prob"]
    eid = log.add(
        t,
        "turn",
        utterance=str(rng.choice(FALSE_WAKE_TEXT)),
        asr_confidence=round(float(rng.beta(2, 4)), 3),
        intent=str(rng.choice(list(INTENTS))),
        nlu_confidence=round(float(rng.beta(2, 5)), 3),
        slots={},
        response=WRONG,
        barge_in=bool(barge),
    )
    if truth is not None:
        truth.append(
            {"kind": "voice", "event_ids": [eid], "failure_point": "false_wake", "outcome": "abandon"}
        )


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
    truth: list | None = None,
    confusions: dict[str, str] | None = None,
) -> dict:
    """Fill `log` for one device (and `truth` with what really failed); returns counts of what was made.

    confusions: the fleet's ASR confusion table (confusion_table); None: no recurring mishearings.
    """
    talk = {"truth": truth, "confusions": confusions}
    rate = cfg["turns_per_present_hour"] / 3600
    wake_rate = cfg["false_wakes_per_present_hour"] / 3600
    for a, b in presence:
        for t in np.sort(rng.uniform(a, b, rng.poisson(rate * (b - a)))):
            add_turn(log, float(t), str(rng.choice(list(INTENTS))), rng, cfg, **talk)
        for t in np.sort(rng.uniform(a, b, rng.poisson(wake_rate * (b - a)))):
            add_false_wake(log, float(t), rng, cfg, truth)
    for (t0, t1, vol), voice in zip(playback, voice_started, strict=True):
        if voice and during(presence, t0 - 1.5):
            genre = str(rng.choice(GENRES))
            fixed = (f"play some {genre}", {"action": "play", "genre": genre}, f"Playing {genre}.")
            add_turn(log, t0 - 1.5, "music", rng, cfg, fixed, **talk)
        log.add(t0, "playback", action="start", volume=vol)
        if during(presence, t1 - 1.0):
            add_turn(
                log, t1 - 1.0, "music", rng, cfg, ("stop the music", {"action": "stop"}, "Okay."), **talk
            )
        log.add(t1, "playback", action="stop", volume=vol)
    return _routines(log, presence, motion_blocks, block_s, rng, cfg, truth)


def _routines(log, presence, motion_blocks, block_s, rng, cfg, truth) -> dict:
    """Motion / no-motion light routines from the device's decisions, and what people do about them."""
    counts = {"lights_back_on": 0, "lights_on_requests": 0, "false_trigger_reports": 0, "routines": 0}
    lights_on, ref = False, -1e18  # ref: when the no-motion timer last restarted
    timeout = cfg["no_motion_timeout_s"]
    end = motion_blocks.size * block_s
    # an arrival the detector has not answered within entry_grace_s leaves someone in the dark
    entries = [a + cfg["entry_grace_s"] for a, b in presence if a + cfg["entry_grace_s"] < min(b, end)]
    moments = sorted(
        [(i * block_s, "motion") for i in np.flatnonzero(motion_blocks)] + [(t, "entry") for t in entries]
    )
    for t, what in [*moments, (end, "end")]:
        # the no-motion timer may have expired (maybe repeatedly) since the last motion
        while lights_on and t - ref >= timeout:
            lights_on, ref = _no_motion(log, ref + timeout, presence, rng, cfg, counts, truth)
        if what == "end":
            break
        if what == "entry":
            if not lights_on and rng.random() < cfg["lights_on_request_prob"]:
                t_req = t + float(rng.uniform(1, 5))
                fixed = ("turn on the lights", {"action": "on"}, "Okay.")
                eid = _request(log, t_req, fixed, rng, cfg)
                _record(truth, "presence", [eid], "presence_missed")
                counts["lights_on_requests"] += 1
                lights_on, ref = True, t_req
            continue
        if not lights_on:
            rid = log.add(t, "routine", routine_id="motion_lights", trigger="motion", action="lights_on")
            counts["routines"] += 1
            lights_on = True
            empty = not during(presence, t)
            p_report = cfg["false_trigger_report_prob"] if empty else cfg["spurious_report_prob"]
            if rng.random() < p_report:
                value = "undo" if rng.random() < cfg["undo_share"] else "false_trigger"
                delay = (
                    float(rng.uniform(30, 1800)) if value == "false_trigger" else float(rng.uniform(5, 60))
                )
                fid = log.add(t + delay, "feedback", target_event_id=rid, value=value)
                _record(truth, "presence", [rid, fid], "presence_false_trigger" if empty else "correct")
                counts["false_trigger_reports"] += 1
        ref = t
    return counts


def _request(log, t, fixed, rng, cfg) -> str:
    """A lights request, recognised as said (short, common commands)."""
    utter, slots, response = fixed
    return log.add(
        t,
        "turn",
        utterance=utter,
        asr_confidence=round(float(np.clip(rng.beta(9, 1.5), 0, 1)), 3),
        intent="lights",
        nlu_confidence=round(float(np.clip(rng.beta(8, 2), 0, 1)), 3),
        slots=slots,
        response=response,
        barge_in=False,
    )


def _record(truth: list | None, kind: str, event_ids: list[str], failure_point: str) -> None:
    if truth is not None:
        truth.append({"kind": kind, "event_ids": event_ids, "failure_point": failure_point})


def _no_motion(log, t, presence, rng, cfg, counts, truth) -> tuple[bool, float]:
    """Lights off after the timeout; a still person may ask for them back. → (lights on, timer ref)."""
    rid = log.add(t, "routine", routine_id="no_motion_lights", trigger="no_motion", action="lights_off")
    counts["routines"] += 1
    if during(presence, t) and rng.random() < cfg["lights_back_on_prob"]:
        t_back = t + float(rng.uniform(3, 20))
        eid = _request(log, t_back, ("turn the lights back on", {"action": "on"}, "Okay."), rng, cfg)
        _record(truth, "presence", [rid, eid], "presence_missed")
        counts["lights_back_on"] += 1
        return True, t_back
    return False, t
