"""A fleet folder: one device folder per unit, each a device (deploy.agent) plus `identity.json`.

An identity is {device_id, fleet_index, profile}: who the unit is, where it sits in the fleet, and which
bundles it takes (speaker4 | display2). Where identities come from is the caller's business (a device
registry; here flows.simulated_fleet, from the simulator's field population).
"""

from __future__ import annotations

import os
from pathlib import Path

from common.io import atomic_write_json, read_json
from deploy.agent import provision_device
from deploy.keystore import PublicKeyLike
from deploy.verify import DEFAULT_MAX_ENTRY_BYTES

IDENTITY_NAME = "identity.json"
IDENTITY_KEYS = ("device_id", "fleet_index", "profile")


def provision_fleet(
    fleet_dir: str | os.PathLike,
    identities: list[dict],
    trusted_keys: dict[str, PublicKeyLike] | list[PublicKeyLike],
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> list[dict]:
    """Provision the identities that are missing (factory state); return every identity in the folder."""
    if not identities:
        raise ValueError("a fleet needs at least one device")
    fleet_dir = Path(fleet_dir)
    for identity in identities:
        missing = [k for k in IDENTITY_KEYS if k not in identity]
        if missing:
            raise ValueError(f"device identity {identity!r} lacks {missing}")
        device_dir = fleet_dir / str(identity["device_id"])
        if (device_dir / IDENTITY_NAME).exists():
            continue
        provision_device(device_dir, str(identity["profile"]), trusted_keys, max_entry_bytes=max_entry_bytes)
        atomic_write_json(device_dir / IDENTITY_NAME, {k: identity[k] for k in IDENTITY_KEYS})
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
