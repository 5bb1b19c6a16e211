"""Ingest: raw device logs → validated curated tables, feature store, quarantine and weak labels."""
