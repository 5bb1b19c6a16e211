"""A fleet of simulated devices: one device folder per unit of the simulator's field population.

Each folder is a device (deploy.agent) plus `identity.json`: the unit's fleet index and device id in
fleet.simulate's field population (so its logs can be simulated as that same physical unit and room)
and its profile (speaker4 | display2, from the population's profile mix).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.io import atomic_write_json, read_json
from deploy.agent import provision_device
from deploy.keystore import PublicKeyLike
from deploy.verify import DEFAULT_MAX_ENTRY_BYTES

IDENTITY_NAME = "identity.json"
FLEET_PRESET = "field"


def provision_fleet(
    fleet_dir: str | os.PathLike,
    n_devices: int,
    trusted_keys: dict[str, PublicKeyLike] | list[PublicKeyLike],
    sim: dict | None = None,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> list[dict]:
    """Provision field units 0..n_devices-1 that are missing (factory state); return every identity."""
    from fleet.config import sim_section
    from fleet.simulate import fleet_unit

    if n_devices < 1:
        raise ValueError("a fleet needs at least one device")
    sim = sim_section(sim)
    fleet_dir = Path(fleet_dir)
    for index in range(n_devices):
        device, _ = fleet_unit(FLEET_PRESET, index, sim)
        device_dir = fleet_dir / device.device_id
        if (device_dir / IDENTITY_NAME).exists():
            continue
        provision_device(device_dir, device.profile, trusted_keys, max_entry_bytes=max_entry_bytes)
        identity = {"device_id": device.device_id, "fleet_index": index, "profile": device.profile}
        atomic_write_json(device_dir / IDENTITY_NAME, identity)
    return list_fleet(fleet_dir)


def list_fleet(fleet_dir: str | os.PathLike) -> list[dict]:
    """Identities of the provisioned devices under fleet_dir, with their folder; sorted by fleet index."""
    fleet_dir = Path(fleet_dir)
    if not fleet_dir.is_dir():
        return []
    devices = []
    for path in sorted(fleet_dir.glob(f"*/{IDENTITY_NAME}")):
        identity = read_json(path)
        devices.append({**identity, "dir": str(path.parent)})
    return sorted(devices, key=lambda d: d["fleet_index"])
