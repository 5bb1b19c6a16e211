"""Stage `deploy`: install the bundle on the turn's (simulated) device and calibrate it there."""

from __future__ import annotations

import time

from common.io import atomic_write_json
from common.paths import Paths
from flows.stages.base import StageTemplate, record


def deploy(params: dict, paths: Paths) -> dict:
    """Install the bundle on the turn's device, then run its calibration on the device's hardware."""
    from deploy.operations import deploy_to_device

    started = time.perf_counter()
    profile = params["package"]["profile"]
    result = deploy_to_device(
        paths.bundle, paths.devices / params["deploy"]["device"], profile, hal=_device_hal(params, profile)
    )
    atomic_write_json(paths.deployment / "deploy.json", result)
    return record(paths.deployment, "deploy", started, result)


def _device_hal(params: dict, profile: str):
    """The turn's device is the first simulated field unit of the bundle's profile: its audio HAL."""
    from fleet.calibration_hal import unit_hal
    from fleet.simulate import fleet_unit, unit_key

    sim = params["simulate"]
    for index in range(256):
        dev, _ = fleet_unit("field", index, sim, params["calibration"]["config"])
        if dev.profile == profile:
            fs = float(params["calibration"]["config"]["fs_hz"])
            return unit_hal(dev, sim["calibration"], unit_key("field", index, sim), fs)
    raise ValueError(f"no simulated field unit of profile {profile!r} among the first 256")


TEMPLATES = (
    StageTemplate(
        "deploy",
        deploy,
        lambda p: [p.bundle_dir],
        lambda p: [p.deployment],
        (
            "deploy",
            "package.profile",
            "simulate.fleet_seed",
            "simulate.profiles_mix",
            "simulate.carriers_hz",
            "simulate.calibration",
            "calibration.config",
        ),
    ),
)
