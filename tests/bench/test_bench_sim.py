"""bench.sim: the simulator benchmark measures rendering rates and a streamed batch on quick sizes."""

from bench.sim import run_bench
from common.params import load_params
from fleet.config import REPO_PARAMS


def test_bench_quick_reports_measurements():
    out = run_bench(load_params(REPO_PARAMS), quick=True)
    for key in ("device_seconds_per_cpu_second", "peak_rss_mb", "field_batch_device_seconds_per_cpu_second"):
        assert out[key] > 0
