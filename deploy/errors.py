"""Errors raised by the deploy package: one exception per kind of refusal, each carrying a reason."""

from __future__ import annotations


class BundleError(Exception):
    """A bundle (or an installed slot) failed verification; `reason` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ManifestError(BundleError):
    """The manifest does not follow the schema in deploy.manifest."""


class KeystoreError(Exception):
    """The signing keystore is missing, unreadable or has unsafe permissions."""


class StoreError(Exception):
    """The artifact store could not find or verify an object."""
