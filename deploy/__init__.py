"""Signed firmware bundles: build, sign, verify, C header emission, artifact store and the device agent."""
