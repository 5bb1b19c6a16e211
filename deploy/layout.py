"""Names and fixed header values of the bundle tar layout, shared by the builder, verifier and agent."""

from __future__ import annotations

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
PAYLOAD_PREFIX = "payload/"
FILE_MODE = 0o644
BLOCK = 512  # tar block size
