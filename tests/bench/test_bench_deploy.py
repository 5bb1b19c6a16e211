"""bench.deploy: bundle build, verify and install throughput on a quick-sized payload."""

from bench.deploy import run_bench
from common.params import load_params


def test_bench_measures(tmp_path):
    params = load_params()
    params["bench"]["deploy"]["seed"] = 1
    figures = run_bench(params, quick=True)
    assert figures["bundle_mb"] > 1.0 and figures["verify_s"] > 0 and figures["install_mb_per_s"] > 0
