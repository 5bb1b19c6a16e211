"""The stage registry is the single source of the pipeline: dvc.yaml is rendered from it and up to date."""

from pathlib import Path

from common.paths import Paths
from flows.dvcfile import render_dvc_yaml
from flows.stages import REGISTRY, execution_order

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_matches_the_registry():
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml(), "run `flywheel dvc-yaml`"


def test_execution_order_runs_producers_before_consumers():
    paths = Paths(Path("data"), "t")
    order = execution_order(paths)
    assert sorted(order) == sorted(REGISTRY)
    position = {n: i for i, n in enumerate(order)}
    for name, stage in REGISTRY.items():
        for other, producer in REGISTRY.items():
            if any(d == o or o in d.parents for d in stage.deps(paths) for o in producer.outs(paths)):
                assert position[other] < position[name], f"{other} must run before {name}"


def test_every_stage_param_section_exists_in_params_yaml():
    from common.params import load_params

    params = load_params(ROOT / "params.yaml")
    for stage in REGISTRY.values():
        for key in stage.params:
            node = params
            for part in key.split("."):
                assert part in node, f"{stage.name}: params.yaml has no {key}"
                node = node[part]


def test_outputs_never_overlap():
    paths = Paths(Path("data"), "t")
    outs = [o for s in REGISTRY.values() for o in s.outs(paths)]
    for i, a in enumerate(outs):
        for b in outs[i + 1 :]:
            assert a != b and a not in b.parents and b not in a.parents, (a, b)
