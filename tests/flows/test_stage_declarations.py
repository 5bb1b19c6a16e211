"""Stages see only the params they declare, and their code dependencies are derived from their imports."""

from pathlib import Path

import pytest

from common.paths import Paths
from flows.stages import REGISTRY, filter_params

PATHS = Paths(Path("data"), "t")


def _code(name: str) -> set[str]:
    return {d.as_posix() for d in REGISTRY[name].deps(PATHS) if not d.as_posix().startswith("data/")}


def test_filter_keeps_only_declared_leaves_with_their_parents():
    params = {"a": {"b": 1, "c": {"d": 2}}, "e": 3, "preset": "tiny"}
    view = filter_params(params, ("a.c.d",))
    assert view == {"a": {"c": {"d": 2}}, "preset": "tiny"}
    view["a"]["c"]["d"] = 5
    assert params["a"]["c"]["d"] == 2  # a copy: a stage cannot change what the next one sees


def test_filter_rejects_a_declared_key_params_lack():
    with pytest.raises(KeyError, match=r"a\.x"):
        filter_params({"a": {"b": 1}}, ("a.x",))


def test_an_undeclared_read_fails():
    from common.params import load_params

    root = Path(__file__).resolve().parents[2]
    view = filter_params(load_params(root / "params.yaml"), REGISTRY["mine"].params)
    assert "context_frames" in view["ingest"]
    with pytest.raises(KeyError):
        view["ingest"]["window_stride"]  # not declared by mine


def test_evaluation_depends_on_the_counting_rules():
    for name in ("evaluate@seed", "evaluate@retrained", "evaluate_baseline"):
        assert "training/metrics.py" in _code(name), name
        assert "flows/stages/evaluate.py" in _code(name)


def test_simulation_and_ingest_do_not_depend_on_training_or_mining():
    for name in ("simulate@seed", "simulate@field", "ingest@eval"):
        code = _code(name)
        assert not any(f.startswith(("training/", "mining/")) for f in code), (name, code)
    assert "fleet/simulate.py" in _code("simulate@seed")
    assert "ingest/pipeline.py" in _code("ingest@eval")
    assert "fleet/simulate.py" not in _code("ingest@eval")


def test_deps_are_files_and_no_stage_depends_on_a_benchmark():
    for name in REGISTRY:
        for dep in _code(name):
            assert "bench" not in Path(dep).name, (name, dep)
            assert Path(dep).suffix or dep == "deploy/c_templates", (name, dep)  # files, not package folders


def test_data_files_read_by_code_stay_declared():
    assert "fleet/profiles.yaml" in _code("simulate@eval")
    assert "training/dsp_profiles.yaml" in _code("export@seed")
    assert "runtime/mbdp_presets.json" in _code("package")
