"""The simulator and the device front-end agree: Doppler sign/velocity axis, and the canceller's premise."""

import numpy as np
import pytest
from config_testkit import frontend_config

from fleet.devices import make_device
from fleet.events import make_event
from fleet.rooms import make_room
from fleet.scatterers import Acoustics, render_scatterers
from fleet.scenes import DeviceScene

frontend = pytest.importorskip("runtime.frontend")
FS = 2000.0


def unit(carrier):
    rng = np.random.default_rng(8)
    dev = make_device("speaker4", "t-0001", carrier, rng)
    return dev, make_room(dev.height_m, rng)


@pytest.mark.parametrize("carrier", [20000.0, 40000.0])
@pytest.mark.parametrize("v", [-1.2, 0.6, 1.5])
def test_target_lands_on_its_radial_velocity_bin(carrier, v):
    dev, room = unit(carrier)
    cfg = frontend_config(speed_of_sound_mps=room.c)
    scene = DeviceScene(dev, room, [], FS, 1)
    n = 4000
    t = np.arange(n) / FS
    pos = ((4.5 - v * t)[:, None] * np.array([0.6, 0.8, 0.0]))[None]  # v > 0: approaching
    iq = scene.render(0, n) + render_scatterers(pos, np.array([0.1]), Acoustics.of(dev, room, FS))
    feats = frontend.extract_features(iq, FS, carrier, cfg)  # [T, V]
    axis = frontend.velocity_axis(cfg)
    peak = axis[np.argmax(feats[len(feats) // 2 :].mean(axis=0))]
    assert abs(peak - v) <= 1.01 * (axis[1] - axis[0])


def test_canceller_removes_music_distortion():
    dev, room = unit(40000.0)
    music = make_event("music", 0.0, 30.0, np.random.default_rng(3), room, volume=10.0)
    quiet = DeviceScene(dev, room, [], FS, 2)
    loud = DeviceScene(dev, room, [music], FS, 2)
    band = {}
    for canceller in (False, True):
        cfg = frontend_config(canceller=canceller)
        for name, scene in (("music", loud), ("quiet", quiet)):
            feats = frontend.extract_features(scene.render(1, 10000), FS, 40000.0, cfg)
            band[name, canceller] = 10 * np.log10(np.mean(10 ** (feats[20:] / 10)))
    # bass sidebands look like motion; projecting out the static signature removes most of them
    # (what remains is the direct path's part orthogonal to the static field: the room's echoes)
    assert band["music", False] > band["quiet", False] + 15
    assert band["music", True] < band["music", False] - 15
