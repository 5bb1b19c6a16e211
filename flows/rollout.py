"""The staged rollout as a Prefect flow: thin wiring of deploy.staged's steps as tasks.

provision (optional) → plan → install on canaries → observe canaries' next logs → gate → rest or rollback.
Every decision goes to the run logger, to the JSON decision log under the fleet folder, and to a
markdown and a table artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from common.params import load_params
from deploy import staged
from flows.field_logs import learning_params
from mining.config import SelfLearningConfig


@task(name="provision-fleet", cache_policy=NO_CACHE)
def provision_task(fleet_dir: str, n_devices: int, sim: dict) -> list[dict]:
    from deploy.keystore import Keystore
    from flows.simulated_fleet import provision_field_fleet

    return provision_field_fleet(fleet_dir, n_devices, Keystore().trusted_public_keys(), sim)


@task(name="plan", cache_policy=NO_CACHE)
def plan_task(bundle: str, fleet_dir: str, canary_fraction: float, seed: int) -> dict:
    return staged.plan_rollout(bundle, fleet_dir, canary_fraction, seed)


@task(name="install-canaries", cache_policy=NO_CACHE)
def install_canaries_task(plan: dict) -> list[dict]:
    return staged.install_canaries(plan)


@task(name="observe-canaries", cache_policy=NO_CACHE)
def observe_task(
    plan: dict, installs: list[dict], rollout: dict, sim: dict, learning: SelfLearningConfig, work_dir: str
) -> dict:
    from flows.simulated_fleet import SimulatedCanaryLogs

    logs = SimulatedCanaryLogs.from_params(sim, rollout, learning)
    return staged.observe_canaries(plan, installs, logs, work_dir)


@task(name="gate-and-finish", cache_policy=NO_CACHE)
def gate_and_finish_task(plan: dict, installs: list[dict], observed: dict, rollout: dict) -> tuple:
    decision = staged.gate(installs, observed, rollout)
    return decision, staged.finish_rollout(plan, installs, decision)


def _log(message: str) -> None:
    get_run_logger().info(message)


@flow(name="staged-rollout", log_prints=True)
def staged_rollout(
    bundle: str,
    fleet_dir: str,
    params_file: str = "params.yaml",
    n_devices: int | None = None,
    canary_fraction: float | None = None,
) -> dict:
    """Roll one signed bundle out over a fleet folder; returns the decision log (outcome + decisions)."""
    params = load_params(params_file)
    rollout, sim = dict(params["deploy"]["rollout"]), params["simulate"]
    if canary_fraction is not None:
        rollout["canary_fraction"] = canary_fraction
    if n_devices:
        provision_task(fleet_dir, n_devices, sim)
    plan = plan_task(bundle, fleet_dir, float(rollout["canary_fraction"]), int(rollout["seed"]))
    log_path = staged.decision_log_path(fleet_dir, plan)
    log = staged.DecisionLog(log_path, staged.log_header(plan), notify=_log)
    staged.record_plan(log, plan)
    installs = install_canaries_task(plan)
    staged.record_installs(log, "install_canaries", installs)
    observed = observe_task(
        plan, installs, rollout, sim, learning_params(params), str(Path(log_path).parent / "canary_logs")
    )
    staged.record_observation(log, observed)
    decision, finished = gate_and_finish_task(plan, installs, observed, rollout)
    doc = staged.record_finish(log, plan, decision, finished)
    doc["decision_log"] = str(log_path)
    create_markdown_artifact(
        key="rollout-decisions",
        markdown=staged.decisions_markdown(doc),
        description="Staged rollout decisions",
    )
    rows = [{"number": k, "value": v} for k, v in decision.numbers.items() if not isinstance(v, dict)]
    create_table_artifact(key="rollout-gate", table=rows, description=f"Canary gate: {doc['outcome']}")
    return doc
