"""Adversarial bundles: each must end in a refusal with a clear reason and an untouched device."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from deploy.agent import device_boot, device_status, install_bundle, update_device_trust
from deploy.keystore import Keystore


def read_members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(bundle, "r:") as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


Members = list[tuple[tarfile.TarInfo, bytes | None]]


def without(bundle: Path, name: str) -> Members:
    return [(i, d) for i, d in read_members(bundle) if i.name != name]


def write_members(out: Path, members: Members, fmt: int = tarfile.USTAR_FORMAT) -> Path:
    with tarfile.open(out, "w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def assert_refused(device: Path, bundle: Path, snapshot, *reason_words: str) -> str:
    before = snapshot(device)
    result = install_bundle(bundle, device)
    assert not result.installed
    status = device_status(device)
    reason = status["last_refusal_reason"]
    assert reason == result.reason
    for word in reason_words:
        assert word in reason.lower(), reason
    assert snapshot(device) == before, "device changed after a refusal"
    assert device_boot(device) == "A"
    assert status["bundle_version"] == "1.0.0" and status["release_counter"] == 1
    return reason


def test_flipped_byte_anywhere_is_refused(device, make_bundle, snapshot, tmp_path):
    good = make_bundle("v2.tar", version="1.1.0", release_counter=2)
    blob = good.read_bytes()
    members = read_members(good)
    offsets = {0, 100, 148, 155, 257, 511, len(blob) - 1, len(blob) - 5000}
    for info, _ in members:
        offsets |= {info.offset, info.offset + 124, info.offset_data, info.offset_data + info.size // 2}
        offsets.add(info.offset_data + info.size)  # first padding byte (all entries are not block-aligned)
    offsets |= {members[-1][0].offset_data + 1024 + 3}  # inside the end-of-archive zero blocks
    reasons = set()
    for offset in sorted(o for o in offsets if o < len(blob)):
        bad = bytearray(blob)
        bad[offset] ^= 0x5A
        path = tmp_path / f"flip-{offset}.tar"
        path.write_bytes(bytes(bad))
        reasons.add(assert_refused(device, path, snapshot))
    assert len(offsets) > 20 and all(reasons)
    assert install_bundle(good, device).installed  # the unflipped bundle is fine


@pytest.mark.parametrize("cut", [0, 100, 512, 700, 0.5, -1, -1024, -10240])
def test_truncation_is_refused(device, make_bundle, snapshot, tmp_path, cut):
    blob = make_bundle("v2.tar", version="1.1.0", release_counter=2).read_bytes()
    keep = int(len(blob) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(blob) + cut)
    path = tmp_path / "cut.tar"
    path.write_bytes(blob[:keep])
    assert_refused(device, path, snapshot)


def test_trailing_data_is_refused(device, make_bundle, snapshot, tmp_path):
    path = tmp_path / "long.tar"
    path.write_bytes(make_bundle("v2.tar", release_counter=2).read_bytes() + b"\0" * 512)
    assert_refused(device, path, snapshot, "trailing")


def test_wrong_key_is_refused(device, make_bundle, snapshot, tmp_path):
    stranger = Keystore(tmp_path / "stranger-keys")
    bundle = make_bundle("v2.tar", release_counter=2, store=stranger)
    assert_refused(device, bundle, snapshot, "not trusted", stranger.active_key_id)


def test_revoked_key_is_refused(device, keystore, make_bundle, snapshot):
    old_key = keystore.active_key_id
    signed_by_old = make_bundle("v2-old-key.tar", version="1.1.0", release_counter=2)
    new_key = keystore.rotate_key(revoke_old=True)
    assert old_key in keystore.revoked() and new_key not in keystore.revoked()
    trusted, revoked = update_device_trust(device, keystore.public_keys().values(), keystore.revoked())
    assert old_key in trusted and new_key in trusted and revoked == [old_key]
    assert_refused(device, signed_by_old, snapshot, "revoked", old_key)
    # the slot installed under the revoked key still boots, and the new key signs the next release
    assert device_boot(device) == "A"
    assert install_bundle(make_bundle("v2-new-key.tar", version="1.1.0", release_counter=2), device).installed


def test_missing_signature_is_refused(device, make_bundle, snapshot, tmp_path):
    members = without(make_bundle("v2.tar", release_counter=2), "manifest.sig")
    assert_refused(device, write_members(tmp_path / "nosig.tar", members), snapshot, "missing signature")


def test_extra_file_is_refused(device, make_bundle, snapshot, tmp_path):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    extra = tarfile.TarInfo("payload/extra.bin")
    extra.size = 4
    members.append((extra, b"evil"))
    path = write_members(tmp_path / "extra.tar", members)
    assert_refused(device, path, snapshot, "extra file", "extra.bin")


def test_missing_file_is_refused(device, make_bundle, snapshot, tmp_path):
    members = without(make_bundle("v2.tar", release_counter=2), "payload/mbdp.json")
    assert_refused(device, write_members(tmp_path / "missing.tar", members), snapshot, "missing", "mbdp.json")


TRAVERSALS = ["payload/../../evil.json", "../evil.json", "/etc/evil.json", "payload/a\\..\\b"]


@pytest.mark.parametrize("evil_name", TRAVERSALS)
def test_path_traversal_is_refused(device, make_bundle, snapshot, tmp_path, evil_name):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    data = members[-1][1]
    evil = tarfile.TarInfo(evil_name)
    evil.size = len(data)
    members[-1] = (evil, data)
    assert_refused(device, write_members(tmp_path / "traversal.tar", members), snapshot, "path traversal")
    assert not (tmp_path / "evil.json").exists() and not (device.parent / "evil.json").exists()


@pytest.mark.parametrize(
    ("kind", "word"),
    [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hardlink"), (tarfile.CHRTYPE, "device"),
     (tarfile.FIFOTYPE, "fifo"), (tarfile.DIRTYPE, "directory")],
)  # fmt: skip
def test_links_devices_and_directories_are_refused(device, make_bundle, snapshot, tmp_path, kind, word):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    special = tarfile.TarInfo("payload/model_int8.onnx")
    special.type = kind
    special.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    members = [(i, d) for i, d in members if i.name != "payload/model_int8.onnx"]
    members.insert(3, (special, None))
    assert_refused(device, write_members(tmp_path / "special.tar", members), snapshot, word)


def test_duplicate_entries_are_refused(device, make_bundle, snapshot, tmp_path):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    members.append(members[3])  # identical copy: still a duplicate
    assert_refused(device, write_members(tmp_path / "dup.tar", members), snapshot, "duplicate")


def test_huge_declared_size_is_refused(device, make_bundle, snapshot, tmp_path):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    blob = b"".join(
        info.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512) for info, data in members[:3]
    )
    huge = tarfile.TarInfo(members[3][0].name)
    huge.size = 8 * 1024**3 - 1  # 8 GiB declared, no data behind it
    path = tmp_path / "huge.tar"
    path.write_bytes(blob + huge.tobuf(tarfile.USTAR_FORMAT) + b"\0" * 10240)
    assert_refused(device, path, snapshot, "declares", "limit")


def test_pax_extension_headers_are_refused(device, make_bundle, snapshot, tmp_path):
    members = read_members(make_bundle("v2.tar", release_counter=2))
    members[3][0].pax_headers = {"comment": "sneaky"}
    path = write_members(tmp_path / "pax.tar", members, fmt=tarfile.PAX_FORMAT)
    assert_refused(device, path, snapshot, "extension headers")


def test_downgrade_is_refused(device, make_bundle, snapshot):
    assert install_bundle(make_bundle("v3.tar", version="1.2.0", release_counter=3), device).installed
    before = device_status(device)
    result = install_bundle(make_bundle("v2.tar", version="1.1.0", release_counter=2), device)
    assert not result.installed and "not above" in result.reason and result.step == "policy"
    assert device_status(device)["bundle_version"] == before["bundle_version"] == "1.2.0"


def test_same_release_counter_and_redeploy_are_refused(device, make_bundle, snapshot):
    assert_refused(device, make_bundle("v1.tar"), snapshot, "not above")  # the installed bundle again
    other = make_bundle("v1b.tar", version="1.0.1", release_counter=1)
    assert_refused(device, other, snapshot, "release counter 1 is not above the installed 1")


def test_wrong_profile_is_refused(device, make_bundle, snapshot):
    bundle = make_bundle("v2.tar", release_counter=2, profile="soundbar2")
    assert_refused(device, bundle, snapshot, "wrong profile", "soundbar2")


def test_failing_self_test_is_refused(device, make_bundle, snapshot):
    bundle = make_bundle("v2.tar", release_counter=2, corrupt_vectors=True)
    assert_refused(device, bundle, snapshot, "self-test failed", "atol")


def test_mbdp_tuning_that_differs_from_its_vectors_is_refused(device, make_bundle, snapshot):
    from deploy_testkit import mbdp_tuning

    tuning = mbdp_tuning()
    tuning["modes"]["playback"]["bands"][0]["threshold_db"] -= 6.0  # signed, but not what the vectors say
    bundle = make_bundle("v2.tar", release_counter=2, mbdp=tuning)
    assert_refused(device, bundle, snapshot, "self-test failed", "mbdp playback output differs")


def test_mbdp_tuning_the_runtime_cannot_run_is_refused(device, make_bundle, snapshot):
    from deploy_testkit import mbdp_tuning

    tuning = mbdp_tuning()
    tuning["modes"]["sensing"]["crossovers_hz"] = [4000.0, 800.0]  # not increasing, one band short
    bundle = make_bundle("v2.tar", release_counter=2, mbdp=tuning)
    assert_refused(device, bundle, snapshot, "self-test failed", "modes.sensing")


def test_rare_event_trigger_is_self_tested(device, make_bundle, snapshot):
    import numpy as np
    from deploy_testkit import N_EMBED

    from deploy.agent import install_bundle
    from mining.rare_event import logistic_onnx

    broken = make_bundle("v2.tar", release_counter=2, extra={"rare_event.onnx": b"not a model"})
    assert_refused(device, broken, snapshot, "self-test failed", "rare-event trigger failed to run")
    w = np.linspace(-1.0, 1.0, N_EMBED)
    trigger = logistic_onnx(w, 0.1, np.zeros(N_EMBED), np.ones(N_EMBED))
    good = make_bundle("v3.tar", release_counter=3, extra={"rare_event.onnx": trigger})
    assert install_bundle(good, device).installed
