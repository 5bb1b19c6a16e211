"""Physically grounded fleet simulator: devices, rooms, people and nuisances → raw logs + truth."""
