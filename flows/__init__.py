"""Wiring: the stage registry, Prefect flows, DVC glue and the `flywheel` CLI. Packages never import it."""
