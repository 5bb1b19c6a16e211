"""Keystore: created on first use with owner-only permissions, key ids, rotation and revocation."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from deploy.errors import BundleError, KeystoreError
from deploy.keystore import Keystore, default_keystore_dir, key_id_of, raw_public_bytes, verify_signature


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_created_on_first_use_with_owner_only_permissions(tmp_path):
    store = Keystore(tmp_path / "nested" / "keys")
    assert _mode(store.root) == 0o700 and _mode(store.root / "private") == 0o700
    private = store.root / "private" / f"{store.active_key_id}.pem"
    assert _mode(private) == 0o600
    assert Keystore(store.root).active_key_id == store.active_key_id  # reopened, not regenerated


def test_unsafe_private_key_permissions_are_refused(tmp_path):
    store = Keystore(tmp_path / "keys")
    os.chmod(store.root / "private" / f"{store.active_key_id}.pem", 0o644)
    with pytest.raises(KeystoreError, match="permissions"):
        store.sign(b"data")


def test_location_from_env_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_KEYSTORE", str(tmp_path / "env-keys"))
    assert default_keystore_dir() == tmp_path / "env-keys"
    assert Keystore().root == tmp_path / "env-keys"
    monkeypatch.delenv("FLYWHEEL_KEYSTORE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_keystore_dir() == tmp_path / "home" / ".config" / "presence-flywheel" / "keys"


def test_key_id_is_sha256_prefix_of_raw_public_key(keystore):
    key = keystore.public_keys()[keystore.active_key_id]
    assert keystore.active_key_id == hashlib.sha256(raw_public_bytes(key)).hexdigest()[:16]
    assert (
        key_id_of(raw_public_bytes(key)) == key_id_of(raw_public_bytes(key).hex()) == keystore.active_key_id
    )


def test_rotation_keeps_old_key_trusted_until_revoked(keystore):
    first = keystore.active_key_id
    sig_first = keystore.sign(b"manifest")
    second = keystore.rotate_key()
    assert second != first and keystore.active_key_id == second
    assert set(keystore.trusted_public_keys()) == {first, second}
    assert verify_signature(b"manifest", sig_first, keystore.trusted_public_keys(), set()) == first
    third = keystore.rotate_key(revoke_old=True)
    assert keystore.revoked() == {second}
    assert set(keystore.trusted_public_keys()) == {first, third}
    assert set(keystore.public_keys()) == {first, second, third}


def test_signature_checks(keystore, tmp_path):
    sig = keystore.sign(b"manifest")
    trusted = keystore.trusted_public_keys()
    with pytest.raises(BundleError, match="does not match"):
        verify_signature(b"manifesT", sig, trusted, set())
    with pytest.raises(BundleError, match="revoked"):
        verify_signature(b"manifest", sig, trusted, {sig["key_id"]})
    with pytest.raises(BundleError, match="not trusted"):
        verify_signature(b"manifest", sig, Keystore(tmp_path / "other").trusted_public_keys(), set())
    with pytest.raises(BundleError, match="key_id, signature_b64"):
        verify_signature(b"manifest", {"key_id": sig["key_id"]}, trusted, set())
    other = Keystore(tmp_path / "other2")
    forged = {"key_id": sig["key_id"], "signature_b64": other.sign(b"manifest")["signature_b64"]}
    with pytest.raises(BundleError, match="does not match"):
        verify_signature(b"manifest", forged, trusted, set())
