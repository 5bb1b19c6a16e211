"""Plan a device's timeline for a preset: which events happen when (lab clips, household days, eval).

seed  — lab collection: one scripted clip per capture, balanced over the common types, no rare type.
field — household day: occupancy sessions (walk in, minor activities back to back, leave), people
        passing through, and each rare type a small fraction (≈0.1–1 %) of the time; music
        sessions start from a voice request while someone is home and may outlast them.
eval  — continuous episodes cycling through every type (rare ones included), with combinations; a
        minor-motion episode starts with the person walking in (eval.minor_after_walk_in);
        `eval.kinds` (optional) restricts the cycle to those types (e.g. music-only batches).

`mbdp`: the device's MBDP tuning for playback while it senses (runtime.mbdp.MbdpConfig, the bundle's
sensing mode); music events then play through it (fleet.events.music). None: raw playback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.events import MINOR, RARE, Event, make_event
from fleet.rooms import Room
from runtime.mbdp import MbdpConfig

COMMON = ["walk_in", "walk_through", "pacing", "sit_stand", *MINOR]


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


def plan_field(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    cfg = sim["field"]
    occ = cfg["occupied_fraction"]
    events: list[Event] = []
    playback, voice = [], []
    t = rng.uniform(0, 600)
    while t < total_s:
        gap = rng.exponential(1500.0 * (1 - occ) / occ)
        # people passing through an otherwise empty room
        for t_pass in np.sort(t + rng.uniform(0, gap, rng.poisson(gap / 1800.0))):
            events.append(make_event("walk_through", float(t_pass), 0, rng, room))
        t += gap
        if t >= total_s:
            break
        session = rng.exponential(1500.0)
        ev = make_event("walk_in", t, 0, rng, room)
        events.append(ev)
        s = ev.t1
        end = t + session
        if rng.random() < 1 - np.exp(-cfg["music_sessions_per_occupied_hour"] * session / 3600):
            m0 = float(rng.uniform(s, max(end, s + 1)))
            ev_m = _music(m0, float(rng.uniform(120, 900)), rng, room, sim, mbdp)
            events.append(ev_m)
            playback.append((ev_m.t0, ev_m.t1, ev_m.volume))
            voice.append(True)
        while s < end:
            if rng.random() < 0.15:
                etype = str(rng.choice(["sit_stand", "pacing", "walk_through"]))
                dur = rng.uniform(5, 40)
            else:
                etype = str(rng.choice(MINOR, p=[0.3, 0.35, 0.1, 0.05, 0.2]))
                dur = rng.uniform(30, 480)
            ev = make_event(etype, s, dur, rng, room)
            events.append(ev)
            s = ev.t1
        ev = make_event("walk_through", s, 0, rng, room)  # leaving
        events.append(ev)
        t = ev.t1
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
    return Plan(sorted(events, key=lambda e: e.t0), playback, voice)


def plan_eval(
    total_s: float, rng: np.random.Generator, room: Room, sim: dict, mbdp: MbdpConfig | None = None
) -> Plan:
    cfg = sim["eval"]
    kinds = list(cfg.get("kinds") or COMMON + RARE)
    events: list[Event] = []
    playback, voice = [], []
    t = rng.uniform(*cfg["gap_s"])
    queue: list[str] = []
    while t < total_s:
        if not queue:
            queue = list(rng.permutation(kinds))
        etype = queue.pop()
        if etype in MINOR and cfg.get("minor_after_walk_in", True):
            # someone typing or reading came in first, as in a household session
            arrival = make_event("walk_in", t, 0, rng, room)
            events.append(arrival)
            t = arrival.t1
        dur = float(rng.uniform(*cfg["episode_s"]))
        if etype == "clatter":
            dur = min(dur, 4.0)
        if etype == "music":
            ev = _music(t, dur, rng, room, sim, mbdp)
        else:
            ev = make_event(etype, t, dur, rng, room)
        episode = [ev]
        if rng.random() < cfg["combo_prob"]:
            other = str(rng.choice(RARE if ev.is_presence else COMMON))
            ev2 = (
                _music(t, ev.t1 - t, rng, room, sim, mbdp)
                if other == "music"
                else make_event(other, t + rng.uniform(0, 3), ev.t1 - t, rng, room)
            )
            episode.append(ev2)
        for e in episode:
            if e.event_type == "music":
                playback.append((e.t0, e.t1, e.volume))
                voice.append(False)
        events += episode
        t = max(e.t1 for e in episode) + rng.uniform(*cfg["gap_s"])
    return Plan(sorted(events, key=lambda e: e.t0), playback, voice)


PLANNERS = {"seed": plan_seed, "field": plan_field, "eval": plan_eval}


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
