"""Strict bundle verification: signature and every hash checked before anything is unpacked.

The tar is read member by member with `tarfile`, and every byte of the file is accounted for:
headers (tar checksums), manifest and signature (ed25519), payload data (sha256 from the signed
manifest), the zero padding after each entry and the zero end-of-archive records. Anything else
(a flipped byte, truncation, trailing data, an unsigned or unknown entry) is a BundleError.

`verify_bundle` writes nothing. `extract_bundle` repeats the same walk while writing the payload into a
fresh folder (so a bundle swapped between the two passes is still caught). `verify_slot` re-checks an
installed slot folder against its stored manifest and signature.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

from deploy.errors import BundleError
from deploy.keystore import PublicKeyLike, verify_signature
from deploy.layout import BLOCK, MANIFEST_NAME, PAYLOAD_PREFIX, SIGNATURE_NAME
from deploy.manifest import check_payload_name, parse_manifest_bytes

DEFAULT_MAX_ENTRY_BYTES = 256 * 1024 * 1024
MAX_META_BYTES = 1024 * 1024  # manifest.json and manifest.sig
_CHUNK = 1 << 20
_DEVICE_TYPES = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _check_entry_name(name: str) -> None:
    if name.startswith("/") or "\\" in name or ".." in name.split("/") or name.startswith("./"):
        raise BundleError(f"path traversal refused: entry {name!r}")
    if name in (MANIFEST_NAME, SIGNATURE_NAME):
        return
    if not name.startswith(PAYLOAD_PREFIX):
        raise BundleError(f"entry {name!r} is outside payload/ and is not the manifest or signature")
    try:
        check_payload_name(name[len(PAYLOAD_PREFIX) :])
    except BundleError as exc:
        raise BundleError(f"unsafe entry name {name!r}: {exc.reason}") from exc


def _check_entry_type(member: tarfile.TarInfo) -> None:
    name = member.name
    if member.issym():
        raise BundleError(f"symlink entry refused: {name!r} -> {member.linkname!r}")
    if member.islnk():
        raise BundleError(f"hardlink entry refused: {name!r} -> {member.linkname!r}")
    if member.type in _DEVICE_TYPES:
        raise BundleError(f"{_DEVICE_TYPES[member.type]} entry refused: {name!r}")
    if member.isdir():
        raise BundleError(f"directory entry refused: {name!r}")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.issparse():
        raise BundleError(f"unsupported tar entry type {member.type!r} for {name!r}")


def _check_canonical_header(fd: int, member: tarfile.TarInfo) -> None:
    """The raw header must be exactly what this member re-encodes to: no bytes tarfile would skip
    (the tar checksum does not cover its own field, and parsers stop numbers at the first NUL)."""
    raw = os.pread(fd, BLOCK, member.offset)
    try:
        canonical = member.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")
    except ValueError as exc:
        raise BundleError(f"tar header of {member.name!r} cannot be USTAR: {exc}") from exc
    if raw != canonical:
        raise BundleError(f"tar header of {member.name!r} is not in canonical USTAR form")


def _walk_bundle(
    path: str | os.PathLike,
    trusted_keys: dict[str, PublicKeyLike],
    revoked: set[str] | frozenset[str],
    max_entry_bytes: int | None,
    write_to: Path | None,
    after_file: Callable[[str], None] | None = None,
) -> dict:
    """Walk the whole tar, checking everything; with `write_to`, also write the entries there."""
    limit = sys.maxsize if max_entry_bytes is None else max_entry_bytes
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed in the finally below)
    except OSError as exc:
        raise BundleError(f"cannot open bundle {path}: {exc}") from exc
    try:
        fd = fh.fileno()
        file_size = os.fstat(fd).st_size
        try:
            tar = tarfile.open(fileobj=fh, mode="r:")  # noqa: SIM115 (fh is closed below)
        except tarfile.TarError as exc:
            raise BundleError(f"not a readable uncompressed tar archive: {exc}") from exc

        manifest: dict | None = None
        manifest_bytes = b""
        seen: set[str] = set()
        expected_offset = 0
        index = 0
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BundleError(f"corrupt or truncated tar after entry {index}: {exc}") from exc
            if member is None:
                break
            name = member.name
            if (
                member.pax_headers
                or member.offset != expected_offset
                or member.offset_data != member.offset + BLOCK
            ):
                raise BundleError(f"entry {name!r} uses extension headers or sits at an unexpected offset")
            _check_canonical_header(fd, member)
            _check_entry_type(member)
            _check_entry_name(name)
            if name in seen:
                raise BundleError(f"duplicate entry {name!r}")
            seen.add(name)
            size_limit = MAX_META_BYTES if name in (MANIFEST_NAME, SIGNATURE_NAME) else limit
            if member.size > size_limit:
                raise BundleError(
                    f"entry {name!r} declares {member.size} bytes, above the limit {size_limit}"
                )
            if member.offset_data + member.size > file_size:
                raise BundleError(f"bundle is truncated: entry {name!r} extends past the end of the file")

            if index == 0 and name != MANIFEST_NAME:
                raise BundleError(f"first entry must be {MANIFEST_NAME}, found {name!r}")
            if index == 1 and name != SIGNATURE_NAME:
                raise BundleError(f"missing signature: second entry must be {SIGNATURE_NAME}, found {name!r}")

            reader = tar.extractfile(member)
            assert reader is not None  # regular file, checked above
            try:
                if name in (MANIFEST_NAME, SIGNATURE_NAME):
                    data = reader.read()
                    if len(data) != member.size:
                        raise BundleError(f"bundle is truncated inside {name!r}")
                    if name == MANIFEST_NAME:
                        manifest_bytes = data
                    else:
                        manifest = _check_signed_manifest(manifest_bytes, data, trusted_keys, revoked, limit)
                    if write_to is not None:
                        _write_file(write_to / name, [data])
                else:
                    assert manifest is not None
                    _check_payload_entry(member, manifest, reader, write_to)
                if after_file is not None:
                    after_file(name)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise BundleError(f"bundle is truncated or unreadable inside {name!r}: {exc}") from exc

            pad_start = member.offset_data + member.size
            pad = os.pread(fd, _round_up(pad_start, BLOCK) - pad_start, pad_start)
            if pad.strip(b"\0"):
                raise BundleError(f"non-zero bytes in the padding after entry {name!r}")
            expected_offset = _round_up(pad_start, BLOCK)
            index += 1

        _check_archive_end(fd, file_size, expected_offset)
        if manifest is None:
            raise BundleError("missing signature: bundle has no manifest.sig" if index else "bundle is empty")
        missing = sorted(set(manifest["files"]) - {n[len(PAYLOAD_PREFIX) :] for n in seen})
        if missing:
            raise BundleError(f"payload files listed in the manifest are missing: {missing}")
        return manifest
    finally:
        fh.close()


def _check_archive_end(fd: int, file_size: int, end_offset: int) -> None:
    """After the last entry: two zero blocks, zero-padded to the 10240-byte record, nothing else."""
    expected_size = _round_up(end_offset + 2 * BLOCK, tarfile.RECORDSIZE)
    position = end_offset
    while position < min(file_size, expected_size):
        chunk = os.pread(fd, min(_CHUNK, file_size - position), position)
        if chunk.strip(b"\0"):
            raise BundleError(f"corrupt tar header or unexpected data at offset {end_offset}")
        position += len(chunk)
    if file_size < expected_size:
        raise BundleError(f"bundle is truncated: {file_size} bytes, the archive needs {expected_size}")
    if file_size > expected_size:
        raise BundleError(f"unexpected trailing data after the end of the archive ({file_size} bytes)")


def _check_signed_manifest(
    manifest_bytes: bytes,
    signature_bytes: bytes,
    trusted_keys: dict[str, PublicKeyLike],
    revoked: set[str] | frozenset[str],
    max_entry_bytes: int,
) -> dict:
    try:
        signature = json.loads(signature_bytes.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"manifest.sig is not valid JSON: {exc}") from exc
    verify_signature(manifest_bytes, signature, trusted_keys, revoked)
    manifest = parse_manifest_bytes(manifest_bytes)
    for name, entry in manifest["files"].items():
        if entry["size"] > max_entry_bytes:
            raise BundleError(f"manifest declares {name!r} at {entry['size']} bytes, above the limit")
    return manifest


def _check_payload_entry(member: tarfile.TarInfo, manifest: dict, reader, write_to: Path | None) -> None:
    rel = member.name[len(PAYLOAD_PREFIX) :]
    entry = manifest["files"].get(rel)
    if entry is None:
        raise BundleError(f"extra file not in the manifest: {member.name!r}")
    if member.size != entry["size"]:
        raise BundleError(f"{member.name!r} is {member.size} bytes, the manifest says {entry['size']}")
    digest = hashlib.sha256()
    total = 0

    def chunks():
        nonlocal total
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            total += len(chunk)
            yield chunk

    if write_to is None:
        for _ in chunks():
            pass
    else:
        _write_file(write_to / "payload" / rel, chunks())
    if total != entry["size"]:
        raise BundleError(f"bundle is truncated inside {member.name!r}")
    if digest.hexdigest() != entry["sha256"]:
        raise BundleError(f"sha256 mismatch for {member.name!r}: content differs from the signed manifest")


def _write_file(path: Path, chunks: Iterable[bytes]) -> None:
    """Create a new file (never follow or overwrite), write, fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def verify_bundle(
    path: str | os.PathLike,
    trusted_keys: dict[str, PublicKeyLike],
    revoked: set[str] | frozenset[str] = frozenset(),
    max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
) -> dict:
    """Verify a bundle completely without writing anything; return its manifest or raise BundleError."""
    return _walk_bundle(path, trusted_keys, revoked, max_entry_bytes, write_to=None)


def extract_bundle(
    path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    trusted_keys: dict[str, PublicKeyLike],
    revoked: set[str] | frozenset[str] = frozenset(),
    max_entry_bytes: int | None = DEFAULT_MAX_ENTRY_BYTES,
    after_file: Callable[[str], None] | None = None,
) -> dict:
    """Verify again while writing manifest.json, manifest.sig and payload/ into the empty `dest_dir`.

    Every file is fsynced; `after_file(entry_name)` runs after each one (fault injection hook).
    On a BundleError `dest_dir` holds partial content: the caller discards it (it is a temp folder).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise BundleError(f"extraction folder {dest} is not empty")
    return _walk_bundle(path, trusted_keys, revoked, max_entry_bytes, write_to=dest, after_file=after_file)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_slot(slot_dir: str | os.PathLike, trusted_keys: dict[str, PublicKeyLike]) -> dict:
    """Re-check an installed slot: signature over its manifest, every file's size and sha256, no extras.

    Revocation is not applied here: revoking a key stops new installs, it does not brick devices.
    """
    slot = Path(slot_dir)
    try:
        manifest_bytes = (slot / MANIFEST_NAME).read_bytes()
        signature_bytes = (slot / SIGNATURE_NAME).read_bytes()
    except OSError as exc:
        raise BundleError(f"slot {slot.name} has no readable manifest or signature: {exc}") from exc
    manifest = _check_signed_manifest(manifest_bytes, signature_bytes, trusted_keys, frozenset(), sys.maxsize)
    payload = slot / "payload"
    found: set[str] = set()
    for root, dirs, files in os.walk(payload):
        for name in dirs + files:
            full = Path(root) / name
            if full.is_symlink():
                raise BundleError(f"slot {slot.name} contains a symlink {full.relative_to(slot)}")
        found.update((Path(root) / f).relative_to(payload).as_posix() for f in files)
    extra = sorted(found - set(manifest["files"]))
    missing = sorted(set(manifest["files"]) - found)
    if extra or missing:
        raise BundleError(f"slot {slot.name} does not match its manifest: extra {extra}, missing {missing}")
    for name, entry in manifest["files"].items():
        file = payload / name
        if file.stat().st_size != entry["size"] or _sha256_file(file) != entry["sha256"]:
            raise BundleError(f"slot {slot.name}: {name} differs from its signed manifest")
    return manifest
