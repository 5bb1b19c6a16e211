"""Content-addressed artifact store for bundles and models: put/get/list by sha256.

Objects live at `objects/<first 2 hex>/<sha256>`. `put` returns the digest; `get` re-hashes what it reads
and refuses an object whose content does not match its address.

LocalStore: a folder (default). Writes are atomic (temp file + fsync + rename, common.io).
FsspecStore: any fsspec URL: `s3://bucket/prefix` for S3-compatible object stores (needs the s3fs
package; pass endpoint_url etc. as storage options), `memory://`, `file://`. Writes go to a temp key
then move into place, so readers never see a half-written object (a single S3 PUT is atomic anyway).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Protocol

from common.io import atomic_path
from deploy.errors import StoreError

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def _check_digest(digest: str) -> None:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise StoreError(f"{digest!r} is not a sha256 hex digest")


def _object_key(digest: str) -> str:
    _check_digest(digest)
    return f"objects/{digest[:2]}/{digest}"


def _read_source(source: str | os.PathLike | bytes) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


class ArtifactStore(Protocol):
    def put(self, source: str | os.PathLike | bytes) -> str: ...
    def get(self, digest: str, dest: str | os.PathLike) -> Path: ...
    def read_bytes(self, digest: str) -> bytes: ...
    def exists(self, digest: str) -> bool: ...
    def list(self) -> list[str]: ...


class LocalStore:
    """A folder on local disk."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.root / _object_key(digest)

    def put(self, source: str | os.PathLike | bytes) -> str:
        """Store a file or bytes; idempotent; returns the sha256. Files are streamed (hashed, then copied)."""
        digest = (
            hashlib.sha256(source).hexdigest() if isinstance(source, bytes) else _sha256_file(Path(source))
        )
        final = self._path(digest)
        if final.exists():
            return digest
        with atomic_path(final) as tmp:
            if isinstance(source, bytes):
                tmp.write_bytes(source)
            else:
                shutil.copyfile(source, tmp)
            if _sha256_file(tmp) != digest:
                raise StoreError(f"{source} changed while it was being stored")
        return digest

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def read_bytes(self, digest: str) -> bytes:
        path = self._path(digest)
        if not path.exists():
            raise StoreError(f"no object {digest} in {self.root}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"object {digest} in {self.root} is corrupt")
        return data

    def get(self, digest: str, dest: str | os.PathLike) -> Path:
        """Copy the object to `dest` atomically after checking its hash."""
        path = self._path(digest)
        if not path.exists():
            raise StoreError(f"no object {digest} in {self.root}")
        dest = Path(dest)
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
            if _sha256_file(tmp) != digest:
                raise StoreError(f"object {digest} in {self.root} is corrupt")
        return dest

    def list(self) -> list[str]:
        return sorted(p.name for p in (self.root / "objects").glob("??/*") if _DIGEST_RE.match(p.name))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FsspecStore:
    """The same store on any fsspec filesystem; `s3://bucket/prefix` for S3-compatible servers."""

    def __init__(self, url: str, **storage_options) -> None:
        import fsspec

        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")

    def _key(self, digest: str) -> str:
        return f"{self.root}/{_object_key(digest)}"

    def put(self, source: str | os.PathLike | bytes) -> str:
        data = _read_source(source)
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest)
        if not self.fs.exists(key):
            tmp = f"{self.root}/incoming/{uuid.uuid4().hex}"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, key)
        return digest

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def read_bytes(self, digest: str) -> bytes:
        key = self._key(digest)
        if not self.fs.exists(key):
            raise StoreError(f"no object {digest} at {self.root}")
        data = self.fs.cat_file(key)
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"object {digest} at {self.root} is corrupt")
        return data

    def get(self, digest: str, dest: str | os.PathLike) -> Path:
        dest = Path(dest)
        data = self.read_bytes(digest)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
        return dest

    def list(self) -> list[str]:
        prefix = f"{self.root}/objects"
        if not self.fs.exists(prefix):
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.find(prefix))
        return sorted(n for n in names if _DIGEST_RE.match(n))


def open_store(location: str | os.PathLike, **storage_options) -> LocalStore | FsspecStore:
    """A plain path gives a LocalStore; a URL with a scheme (s3://, memory://, ...) an FsspecStore."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return FsspecStore(text, **storage_options)
    return LocalStore(text.removeprefix("file://"))
