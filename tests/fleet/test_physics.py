"""Physics of the baseband path: Doppler, range law, music rank one, fan periodicity, passband."""

import numpy as np
import pytest

from fleet.config import sim_section
from fleet.devices import make_device
from fleet.events import make_event
from fleet.rooms import air_absorption_db_per_m, make_room, speed_of_sound
from fleet.scatterers import Acoustics, render_scatterers
from fleet.scenes import DeviceScene

FS = 2000.0


@pytest.fixture(scope="module")
def unit():
    rng = np.random.default_rng(3)
    dev = make_device("speaker4", "t-0000", 40000.0, rng)
    room = make_room(dev.height_m, rng)
    return dev, room


def test_speed_of_sound_and_absorption_formulas():
    assert speed_of_sound(0.0) == pytest.approx(331.3)
    assert speed_of_sound(20.0) == pytest.approx(331.3 * np.sqrt(1 + 20 / 273.15))
    assert air_absorption_db_per_m(40000.0, 0.5) == pytest.approx(1.3)
    assert air_absorption_db_per_m(48000.0, 0.5) > air_absorption_db_per_m(32000.0, 0.5)
    assert air_absorption_db_per_m(40000.0, 0.3) > air_absorption_db_per_m(40000.0, 0.6)


@pytest.mark.parametrize("v", [-1.3, -0.4, 0.25, 0.9, 2.0])
@pytest.mark.parametrize("decim", [1, 4])
def test_point_target_doppler_peak(unit, v, decim):
    dev, room = unit
    ac = Acoustics.of(dev, room, FS)
    n = 2000
    t = np.arange(n) / FS
    tc = t if decim == 1 else t[0] + np.arange((n - 1) // decim + 2) * decim / FS
    u = np.array([0.8, 0.6, 0.0])
    pos = ((3.5 - v * tc)[:, None] * u)[None]  # [1, n_c, 3]; v > 0 approaches
    x = render_scatterers(pos, np.array([0.1]), ac, decim=decim, n=n)  # [M, n]
    f = np.fft.fftfreq(n, 1 / FS)
    expected = 2 * v * ac.f0 / ac.c
    for m in range(dev.n_mics):
        peak = f[np.argmax(np.abs(np.fft.fft(x[m] * np.hanning(n))))]
        assert abs(peak - expected) <= FS / n, (m, peak, expected)


def test_echo_level_follows_spreading_and_absorption(unit):
    dev, room = unit
    ac = Acoustics.of(dev, room, FS)
    u = np.array([1.0, 0.0, 0.0])
    ranges = np.array([0.8, 1.5, 2.5, 4.0, 6.0])
    levels = []
    for r in ranges:
        pos = np.repeat((r * u)[None, None], 64, axis=1)
        levels.append(20 * np.log10(np.abs(render_scatterers(pos, np.array([0.1]), ac)[0]).mean()))
    alpha = room.alpha(dev.carrier_hz)
    expected = -40 * np.log10(ranges) - 2 * alpha * ranges  # two-way spherical spreading + air
    measured = np.array(levels) - levels[0]
    assert np.all(np.abs(measured - (expected - expected[0])) < 1.0), (measured, expected - expected[0])


def test_music_distortion_is_rank_one_with_direct_path_signature(unit):
    dev, room = unit
    sim = sim_section(None)
    ev = make_event("music", 0.0, 5.0, np.random.default_rng(1), room, volume=8.0, excursion_mm=1.2)
    quiet = DeviceScene(dev, room, [], FS, 1)
    loud = DeviceScene(dev, room, [ev], FS, 1)
    t = 1.0 + np.arange(4000) / FS
    d = loud.render_times(t) - quiet.render_times(t)  # [M, n] music distortion alone
    u, s, _ = np.linalg.svd(d, full_matrices=False)
    assert s[1] / s[0] < 1e-3
    direct = loud.direct / np.linalg.norm(loud.direct)
    assert abs(np.vdot(direct, u[:, 0])) > 0.999
    # sidebands at f0 ± f_bass: energy below 200 Hz, and strong (the carrier's phase swings)
    spec = np.abs(np.fft.fft(d[0])) ** 2
    f = np.fft.fftfreq(d.shape[1], 1 / FS)
    assert spec[np.abs(f) < 200].sum() > 0.9 * spec.sum()
    assert sim["music_excursion_mm"] > 0


@pytest.mark.parametrize("kind", ["ceiling_fan", "pedestal_fan"])
def test_fan_repeats_at_blade_pass_rate(unit, kind):
    from fleet.events import RenderCtx

    dev, room = unit
    ev = make_event(kind, 0.0, 60.0, np.random.default_rng(5), room)
    scene = DeviceScene(dev, room, [ev], FS, 1)
    ctx = RenderCtx(scene.ac, np.arange(dev.n_mics), scene.direct, scene.reflections)
    f_bp = ev.meta["blade_pass_hz"]
    t = 20.0 + np.arange(8000) / FS  # 4 s
    x0, x1 = ev.draw(t, ctx), ev.draw(t + 1.0 / f_bp, ctx)
    f = np.fft.fftfreq(t.size, 1 / FS)
    blades = np.abs(f) > 20.0  # a pedestal fan's housing also yaws slowly (a few Hz of Doppler)
    if kind == "ceiling_fan":  # the blade set looks the same one blade-pass period later
        assert np.linalg.norm(x1 - x0) < 1e-3 * np.linalg.norm(x0)
        blades[:] = True
    # so the spectrum is a line spectrum at multiples of the blade-pass rate
    spec = np.abs(np.fft.fft((x0[0] - x0[0].mean()) * np.hanning(t.size))) ** 2
    harmonic = np.abs(f / f_bp - np.round(f / f_bp)) * f_bp <= 2 * FS / t.size
    assert spec[harmonic & blades].sum() > 0.9 * spec[blades].sum()
    assert harmonic.mean() < 0.3  # the lines are a small part of the band


def test_passband_demodulates_to_baseband(unit):
    demod = pytest.importorskip("runtime.demod")
    from fleet.passband import render_passband

    dev, room = unit
    ev = make_event("walk_through", 0.5, 0.0, np.random.default_rng(2), room)
    scene = DeviceScene(dev, room, [ev], FS, 11)
    t0, dur = 1.0, 2.0
    pcm = render_passband(scene, t0, dur, 96000.0, noise=False)  # [M, 192000]
    bb = demod.demodulate(pcm, 96000.0, dev.carrier_hz, FS)  # [M, 4000]
    ref = scene.render_times(t0 + np.arange(bb.shape[1]) / FS)
    mid = slice(200, bb.shape[1] - 200)  # skip the filter's edge transients
    moving_ref = ref[:, mid] - ref[:, mid].mean(axis=1, keepdims=True)
    moving_bb = bb[:, mid] - bb[:, mid].mean(axis=1, keepdims=True)
    static_err = np.abs(bb[:, mid].mean(1) - ref[:, mid].mean(1)) / np.abs(ref[:, mid].mean(1))
    assert np.all(static_err < 0.01)
    err = np.linalg.norm(moving_bb - moving_ref) / np.linalg.norm(moving_ref)
    assert err < 0.05, err


def test_passband_noise_level_matches_baseband(unit):
    demod = pytest.importorskip("runtime.demod")
    from fleet.passband import render_passband

    dev, room = unit
    scene = DeviceScene(dev, room, [], FS, 4)
    pcm = render_passband(scene, 0.0, 1.0, 96000.0, noise=True)
    bb = demod.demodulate(pcm, 96000.0, dev.carrier_hz, FS)[:, 100:-100]
    noise_db = 10 * np.log10(np.var(bb, axis=1).mean())
    assert abs(noise_db - dev.noise_dbfs) < 1.0
