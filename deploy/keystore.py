"""Ed25519 signing keystore, kept outside the repository.

Layout (created on first use, folder 0o700, private keys 0o600):

    <root>/private/<key_id>.pem   PKCS#8 PEM private keys
    <root>/public/<key_id>.pub    raw public key, hex
    <root>/active.json            {"key_id": ...}  the key new bundles are signed with
    <root>/revoked.json           sorted list of revoked key ids

key_id = first 16 hex digits of sha256(raw 32-byte public key). Root: the `root` argument, else
$FLYWHEEL_KEYSTORE, else ~/.config/presence-flywheel/keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from deploy.errors import BundleError, KeystoreError

KEYSTORE_ENV = "FLYWHEEL_KEYSTORE"
DEFAULT_KEYSTORE = Path("~/.config/presence-flywheel/keys")
PublicKeyLike = Ed25519PublicKey | bytes | str


def default_keystore_dir() -> Path:
    env = os.environ.get(KEYSTORE_ENV)
    return Path(env).expanduser() if env else DEFAULT_KEYSTORE.expanduser()


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: PublicKeyLike) -> str:
    """First 16 hex digits of sha256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_bytes(load_public_key(public_key))).hexdigest()[:16]


def load_public_key(key: PublicKeyLike) -> Ed25519PublicKey:
    """Accept an Ed25519PublicKey, its 32 raw bytes, or those bytes as hex."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key.strip())
        except ValueError as exc:
            raise KeystoreError("public key hex is malformed") from exc
    if not isinstance(key, bytes) or len(key) != 32:
        raise KeystoreError("an ed25519 public key is 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(key)


def sign_bytes(private_key: Ed25519PrivateKey, data: bytes) -> dict:
    """Signature record stored in manifest.sig: {key_id, signature_b64}."""
    return {
        "key_id": key_id_of(private_key.public_key()),
        "signature_b64": base64.b64encode(private_key.sign(data)).decode("ascii"),
    }


def verify_signature(
    data: bytes, signature: dict, trusted_keys: dict[str, PublicKeyLike], revoked: set[str] | frozenset[str]
) -> str:
    """Check a {key_id, signature_b64} record over `data`; return the key id or raise BundleError."""
    if not isinstance(signature, dict) or set(signature) != {"key_id", "signature_b64"}:
        raise BundleError("manifest.sig must be {key_id, signature_b64}")
    key_id = signature["key_id"]
    if not isinstance(key_id, str):
        raise BundleError("manifest.sig key_id must be a string")
    if key_id in revoked:
        raise BundleError(f"signing key {key_id} is revoked")
    if key_id not in trusted_keys:
        raise BundleError(f"signing key {key_id} is not trusted by this device")
    public_key = load_public_key(trusted_keys[key_id])
    if key_id_of(public_key) != key_id:
        raise BundleError(f"trusted key stored under {key_id} has a different key id")
    try:
        sig = base64.b64decode(signature["signature_b64"], validate=True)
        public_key.verify(sig, data)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise BundleError(f"signature by key {key_id} does not match manifest.json") from exc
    return key_id


def _check_private_mode(path: Path, limit: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~limit:
        raise KeystoreError(f"{path} has permissions {oct(mode)}; expected at most {oct(limit)}")


class Keystore:
    """A folder of ed25519 keys: one active signing key, several trusted public keys, a revocation list."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_keystore_dir()
        self._ensure()

    # -- layout -----------------------------------------------------------------------------
    def _ensure(self) -> None:
        fresh = not (self.root / "active.json").exists()
        for sub in (self.root, self.root / "private", self.root / "public"):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in (self.root, self.root / "private"):
            os.chmod(sub, 0o700)
        if not (self.root / "revoked.json").exists():
            atomic_write_json(self.root / "revoked.json", [])
        if fresh:
            self._set_active(self._new_key())
        _check_private_mode(self.root, 0o700)

    def _new_key(self) -> str:
        private_key = Ed25519PrivateKey.generate()
        key_id = key_id_of(private_key.public_key())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self.root / "private" / f"{key_id}.pem"
        atomic_write_bytes(path, pem)  # mkstemp creates the temp file 0o600 already
        os.chmod(path, 0o600)
        atomic_write_text(
            self.root / "public" / f"{key_id}.pub", raw_public_bytes(private_key.public_key()).hex()
        )
        return key_id

    def _set_active(self, key_id: str) -> None:
        atomic_write_json(self.root / "active.json", {"key_id": key_id})

    # -- queries ------------------------------------------------------------------------------
    @property
    def active_key_id(self) -> str:
        return read_json(self.root / "active.json")["key_id"]

    def private_key(self, key_id: str | None = None) -> Ed25519PrivateKey:
        key_id = key_id or self.active_key_id
        path = self.root / "private" / f"{key_id}.pem"
        if not path.exists():
            raise KeystoreError(f"no private key {key_id} in {self.root}")
        _check_private_mode(path, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeystoreError(f"{path} is not an ed25519 key")
        return key

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key in the store, revoked ones included."""
        keys = {}
        for path in sorted((self.root / "public").glob("*.pub")):
            key = load_public_key(path.read_text().strip())
            keys[key_id_of(key)] = key
        return keys

    def revoked(self) -> set[str]:
        return set(read_json(self.root / "revoked.json"))

    def trusted_public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Public keys a device should trust: all minus revoked."""
        revoked = self.revoked()
        return {k: v for k, v in self.public_keys().items() if k not in revoked}

    # -- operations ---------------------------------------------------------------------------
    def sign(self, data: bytes) -> dict:
        key_id = self.active_key_id
        if key_id in self.revoked():
            raise KeystoreError(f"active key {key_id} is revoked; rotate first")
        return sign_bytes(self.private_key(key_id), data)

    def add_trusted_public_key(self, key: PublicKeyLike) -> str:
        """Trust another signer's public key (no private half here)."""
        key = load_public_key(key)
        key_id = key_id_of(key)
        atomic_write_text(self.root / "public" / f"{key_id}.pub", raw_public_bytes(key).hex())
        return key_id

    def revoke(self, key_id: str) -> None:
        atomic_write_text(self.root / "revoked.json", json.dumps(sorted(self.revoked() | {key_id})) + "\n")

    def rotate_key(self, revoke_old: bool = False) -> str:
        """Make a new active key; the old public key stays trusted unless `revoke_old`."""
        old = self.active_key_id
        new = self._new_key()
        self._set_active(new)
        if revoke_old:
            self.revoke(old)
        return new
