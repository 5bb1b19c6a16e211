"""bench/scale.py's arithmetic: the fleet's daily cost from measured per-stage rates."""

import math

import pytest

from bench.scale import fleet_needs, per_cpu_second


def test_per_cpu_second_divides_and_refuses_no_time():
    assert per_cpu_second(0.5, 2.0) == 0.25
    assert math.isnan(per_cpu_second(1.0, 0.0))


def test_fleet_needs_adds_the_stages_cpu_over_the_day():
    rates = {"ingest": 1 / 15.0, "evaluate": 1 / 30.0}  # device-hours per CPU-second
    needs = fleet_needs(
        rates, devices=600, minutes_per_day=10.0, hours_per_day=12.0, bytes_per_device_hour=1e9
    )
    assert needs["device_hours_per_day"] == pytest.approx(100.0)
    assert needs["cpu_hours_per_day"] == pytest.approx({"ingest": 1500 / 3600, "evaluate": 3000 / 3600})
    assert needs["cpu_hours_per_day_total"] == pytest.approx(4500 / 3600)
    assert needs["workers_for_hours_per_day"] == pytest.approx(4500 / 3600 / 12.0)
    assert needs["raw_gb_per_day"] == pytest.approx(100.0)
