"""The suites stand apart from the stages: every suite has its module and its params.yaml bench.<suite>
section, and no stage depends on a benchmark module or a benchmark knob (editing one leaves `dvc status`
alone)."""

import importlib
from pathlib import Path

from bench.suites import SUITES, merged_figures
from common.params import load_params
from common.paths import Paths
from flows.stages import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PARAMS = load_params(ROOT / "params.yaml")


def test_every_suite_has_a_module_and_its_own_params_section():
    assert set(PARAMS["bench"]) == set(SUITES)
    for suite, module in SUITES.items():
        assert callable(importlib.import_module(module).run_bench), suite


def _section(key: str):
    node = PARAMS
    for part in key.split("."):
        node = node[part]
    return node


def _has_bench_key(node) -> bool:
    return isinstance(node, dict) and ("bench" in node or any(_has_bench_key(v) for v in node.values()))


def test_no_stage_depends_on_a_benchmark_module_or_knob():
    paths = Paths(Path("data"), "t")
    for stage in REGISTRY.values():
        for dep in stage.deps(paths):
            folder = ROOT / dep
            assert dep.parts[:1] != ("bench",), f"{stage.name} depends on {dep}"
            if folder.is_dir():  # a whole-folder dependency must not hold a benchmark
                benches = [str(p.relative_to(ROOT)) for p in folder.rglob("bench*.py")]
                assert benches == [], f"{stage.name} depends on {dep}, which holds {benches}"
        for key in stage.params:
            assert key.split(".")[0] != "bench", f"{stage.name} declares {key}"
            assert not _has_bench_key(_section(key)), f"{stage.name}: params {key} holds benchmark knobs"


def test_merged_figures_merge_the_parts_in_order():
    def first(params, quick=False):
        return {"a": 1, "shared": "first", "quick": quick}

    def second(params, quick=False):
        return {"b": params["x"], "shared": "second"}

    merged = merged_figures({"x": 2}, True, first, second)
    assert merged == {"a": 1, "b": 2, "shared": "second", "quick": True}
