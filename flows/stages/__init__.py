"""The pipeline's stages: plain functions over (params, paths), registered with their inputs and outputs.

This is the one place where packages are wired together. One module per stage family (simulate, ingest,
labels, train, evaluate, package, deploy, report) holds its functions next to their registration;
registry.py collects them, and run_stage runs one on the params it declares. The CLI (`flywheel stage
NAME`, which dvc.yaml calls) and the Prefect flow both run these same functions; dvc.yaml is rendered
from the registry (flows/dvcfile.py), so the two can never disagree about what a stage reads and writes.
No Prefect import here.
"""

from flows.stages.base import (
    BATCHES,
    MODELS,
    STAGE_RECORD,
    TRAINING_DATA,
    Stage,
    StageTemplate,
    find_stage_records,
    training_batches,
)
from flows.stages.registry import (
    REGISTRY,
    execution_order,
    filter_params,
    merge_shards,
    plan_shards,
    run_shard,
    run_stage,
    run_stage_function,
)

__all__ = [
    "BATCHES",
    "MODELS",
    "REGISTRY",
    "STAGE_RECORD",
    "TRAINING_DATA",
    "Stage",
    "StageTemplate",
    "execution_order",
    "filter_params",
    "find_stage_records",
    "merge_shards",
    "plan_shards",
    "run_shard",
    "run_stage",
    "run_stage_function",
    "training_batches",
]
