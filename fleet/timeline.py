"""Plan a device's timeline for a preset: which events happen when (lab clips, household days, eval).

People arrive and leave: every occupancy session is walk_in (from the door), activities back to back
(major motion, minor motion, or `still`: reading, watching TV, asleep), then walk_out (back through the
door); a walk_through is a visit of its own. Outside sessions the room is really empty (nuisances only).

seed      — lab collection: one scripted clip per capture, balanced over the common types, no rare type.
field     — household day: occupancy sessions, people passing through, and each rare type a small
            fraction (≈0.1–1 %) of the time; music sessions start from a voice request while someone
            is home and may outlast them.
eval      — the stress mix: episodes cycling through every type (rare ones included), each presence
            type as a whole session (arrival, the activity, departure), each nuisance in an empty room,
            with combinations; `eval.kinds` (optional) restricts the cycle to those types.
household — held-out whole days at field prevalence: sessions (much of them still), people passing
            through, and nuisances that run for hours as a real fan or HVAC does (`household.*`).

`mbdp`: the device's MBDP tuning for playback while it senses (runtime.mbdp.MbdpConfig, the bundle's
sensing mode); music events then play through it (fleet.events.music). None: raw playback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.events import MINOR, RARE, Event, make_event
from fleet.rooms import Room
from runtime.mbdp import MbdpConfig

ACTIVITIES = ["pacing", "sit_stand", *MINOR]  # what a person does between arriving and leaving
COMMON = ["walk_in", "walk_out", "walk_through", *ACTIVITIES]
SESSION_MINOR = [m for m in MINOR if m != "still"]


@dataclass
class Plan:
    events: list[Event]
    playback: list[tuple[float, float, float]]  # (t_start, t_stop, volume) absolute seconds
    voice_started: list[bool]  # per playback session: started by a voice request


def presence_intervals(events: list[Event]) -> list[tuple[float, float]]:
    """Union of presence event intervals, sorted."""
    spans = sorted((e.t0, e.t1) for e in events if e.is_presence)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1.0:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _music(t0, dur, rng, room, sim, mbdp: MbdpConfig | None = None) -> Event:
    vol = float(rng.integers(2, 11))
    kw = {} if mbdp is None else {"mbdp": mbdp}
    return make_event("music", t0, dur, rng, room, volume=vol, excursion_mm=sim["music_excursion_mm"], **kw)


def plan_seed(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    clip = float(sim["capture_s"])
    n_clips = int(np.ceil(total_s / clip))
    order: list[str] = []
    while len(order) < n_clips:
        order += list(rng.permutation(COMMON))
    events = []
    for k in range(n_clips):
        if rng.random() < sim["seed_preset"]["empty_prob"]:
            continue
        etype = order[k]
        t0 = k * clip + rng.uniform(0.3, 1.5)
        ev = make_event(etype, t0, clip - (t0 - k * clip) - 0.3, rng, room)
        # scripted clips end with the take: trim to the clip (a walk may be cut at the clip end)
        events.append(Event(ev.event_type, ev.t0, min(ev.t1, (k + 1) * clip), ev.draw, meta=ev.meta))
    return Plan(events, [], [])


def session(
    t0: float, activities: list[tuple[str, float]], rng: np.random.Generator, room: Room
) -> list[Event]:
    """One occupancy session: walk_in at t0, the activities [(type, seconds)] back to back, walk_out."""
    events = [make_event("walk_in", t0, 0, rng, room)]
    for etype, dur in activities:
        events.append(make_event(etype, events[-1].t1, dur, rng, room))
    events.append(make_event("walk_out", events[-1].t1, 0, rng, room))
    return events


def _field_activities(
    length_s: float, rng: np.random.Generator, still_share: float
) -> list[tuple[str, float]]:
    """Activities filling about length_s of a session: some major motion, minor motion, still spells."""
    out, total = [], 0.0
    while total < length_s:
        u = rng.random()
        if u < 0.12:
            etype, dur = str(rng.choice(["sit_stand", "pacing"])), float(rng.uniform(5, 40))
        elif u < 0.12 + still_share:
            etype, dur = "still", float(rng.uniform(120, 1800))
        else:
            etype = str(rng.choice(SESSION_MINOR, p=[0.3, 0.35, 0.1, 0.05, 0.2]))
            dur = float(rng.uniform(30, 480))
        out.append((etype, dur))
        total += dur
    return out


def _with_music(events, playback, voice, s0, s1, rng, room, sim, mbdp, rate_per_hour) -> None:
    """A voice-requested music session during [s0, s1] with probability from its hourly rate."""
    if rng.random() < 1 - np.exp(-rate_per_hour * (s1 - s0) / 3600):
        m0 = float(rng.uniform(s0, max(s1, s0 + 1)))
        ev_m = _music(m0, float(rng.uniform(120, 900)), rng, room, sim, mbdp)
        events.append(ev_m)
        playback.append((ev_m.t0, ev_m.t1, ev_m.volume))
        voice.append(True)


def _occupancy(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, cfg: dict, mbdp: MbdpConfig | None
) -> Plan:
    """Household occupancy over [0, total_s): sessions separated by empty spells with passers-by."""
    occ = cfg["occupied_fraction"]
    session_mean = float(cfg["session_mean_s"])
    still_share = float(cfg["still_share"])
    passes_per_hour = float(cfg["passes_per_empty_hour"])
    events: list[Event] = []
    playback: list[tuple[float, float, float]] = []
    voice: list[bool] = []
    t = rng.uniform(0, 600)
    while t < total_s:
        gap = rng.exponential(session_mean * (1 - occ) / occ)
        # people passing through an otherwise empty room (in at the door, across, out)
        for t_pass in np.sort(t + rng.uniform(0, gap, rng.poisson(gap * passes_per_hour / 3600.0))):
            events.append(make_event("walk_through", float(t_pass), 0, rng, room))
        t += gap
        if t >= total_s:
            break
        visit = session(t, _field_activities(rng.exponential(session_mean), rng, still_share), rng, room)
        events += visit
        _with_music(
            events,
            playback,
            voice,
            visit[0].t1,
            visit[-1].t0,
            rng,
            room,
            sim,
            mbdp,
            cfg["music_sessions_per_occupied_hour"],
        )
        t = visit[-1].t1
    return Plan(events, playback, voice)


def plan_field(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    cfg = sim["field"]
    occupancy = _occupancy(total_s, rng, room, sim, cfg, mbdp)
    events = occupancy.events
    lo, hi = cfg["rare_fraction"]
    for etype in RARE:
        if etype == "music":
            continue
        share = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        budget = share * total_s
        typical = {"clatter": 2.0, "other_device": 120.0, "pest_repeller": 300.0}.get(etype, 240.0)
        while budget > 0:
            dur = float(min(budget, rng.uniform(0.5, 1.5) * typical))
            t0 = float(rng.uniform(0, max(total_s - dur, 1.0)))
            ev = make_event(etype, t0, max(dur, 0.5), rng, room)
            events.append(ev)
            budget -= ev.t1 - ev.t0
    return Plan(sorted(events, key=lambda e: e.t0), occupancy.playback, occupancy.voice_started)


def plan_household(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    """Whole days: occupancy as in the field, and nuisances in runs of their own length (a ceiling fan
    for hours, HVAC cycles, a pet's rounds, clatter), independent of whether anyone is home."""
    cfg = sim["household"]
    occupancy = _occupancy(total_s, rng, room, sim, cfg, mbdp)
    events = occupancy.events
    for etype, spec in cfg["nuisances"].items():
        if etype not in RARE or etype == "music":
            raise ValueError(f"simulate.household.nuisances: {etype!r} is not a nuisance type")
        lo, hi = (float(x) for x in spec["run_s"])
        for _ in range(rng.poisson(float(spec["per_day"]) * total_s / 86400.0)):
            dur = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            t0 = float(rng.uniform(0, max(total_s - dur, 1.0)))
            events.append(make_event(etype, t0, dur, rng, room))
    return Plan(sorted(events, key=lambda e: e.t0), occupancy.playback, occupancy.voice_started)


def plan_eval(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    """The stress mix: a presence type is a whole session (walk_in, the activity, walk_out; walk_in and
    walk_out stand for a short still visit, walk_through is its own visit), a nuisance runs in an empty
    room; with combo_prob a second event overlaps (a nuisance during a visit, a visit during a nuisance)."""
    cfg = sim["eval"]
    kinds = list(cfg.get("kinds") or COMMON + RARE)
    events: list[Event] = []
    playback: list[tuple[float, float, float]] = []
    voice: list[bool] = []

    def visit(etype: str, t0: float, dur: float) -> list[Event]:
        if etype == "walk_through":
            return [make_event("walk_through", t0, 0, rng, room)]
        activity = "still" if etype in ("walk_in", "walk_out") else etype
        return session(t0, [(activity, dur)], rng, room)

    def nuisance(etype: str, t0: float, dur: float) -> Event:
        if etype == "music":
            ev = _music(t0, dur, rng, room, sim, mbdp)
            playback.append((ev.t0, ev.t1, ev.volume))
            voice.append(False)
            return ev
        return make_event(etype, t0, min(dur, 4.0) if etype == "clatter" else dur, rng, room)

    t = rng.uniform(*cfg["gap_s"])
    queue: list[str] = []
    while t < total_s:
        if not queue:
            queue = list(rng.permutation(kinds))
        etype = str(queue.pop())
        dur = float(rng.uniform(*cfg["episode_s"]))
        combo = rng.random() < cfg["combo_prob"]
        if etype in RARE:
            episode = [nuisance(etype, t, dur)]
            if combo:  # someone visits while the nuisance runs
                other = str(rng.choice(["walk_through", *ACTIVITIES]))
                episode += visit(other, t + rng.uniform(0, max(dur - 10, 1)), rng.uniform(10, 40))
        else:
            episode = visit(etype, t, dur)
            if combo:  # a nuisance during the visit
                other = str(rng.choice(RARE))
                inside = episode[0].t1
                episode.append(nuisance(other, inside, max(episode[-1].t0 - inside, 2.0)))
        events += episode
        t = max(e.t1 for e in episode) + rng.uniform(*cfg["gap_s"])
    return Plan(sorted(events, key=lambda e: e.t0), playback, voice)


PLANNERS = {"seed": plan_seed, "field": plan_field, "eval": plan_eval, "household": plan_household}


def plan(
    preset: str,
    total_s: float,
    rng: np.random.Generator,
    room: Room,
    sim: dict,
    mbdp: MbdpConfig | None = None,
) -> Plan:
    if preset not in PLANNERS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PLANNERS)})")
    return PLANNERS[preset](total_s, rng, room, sim, mbdp)
