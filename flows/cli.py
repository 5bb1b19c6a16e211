"""`flywheel`: the one command line in front of every stage, flow, benchmark and device operation.

Thin on purpose: parse arguments, call a plain function from the packages or flows/, print the result.
Heavy libraries (torch, lightning, great-expectations, prefect, dvc) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_lab import lab_app
from flows.cli_labels import labels_app
from flows.cli_report import report_app
from flows.cli_self_learning import self_learning

app = typer.Typer(
    help="Presence flywheel: ingest, mine, label, retrain, quantize, package and deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bundle_app = typer.Typer(help="Inspect and verify signed firmware bundles.", no_args_is_help=True)
device_app = typer.Typer(help="Simulated devices: provision and status.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")
app.add_typer(device_app, name="device")
app.add_typer(labels_app, name="labels")
app.add_typer(lab_app, name="lab")
app.add_typer(report_app, name="report")
app.command("self-learning")(self_learning)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="data root (default: data)")]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _write_json(path: Path | None, obj: dict) -> None:
    from common.io import atomic_write_json, dumps_json

    if path is None:
        typer.echo(dumps_json(obj), nl=False)
    else:
        atomic_write_json(path, obj)


@app.command()
def init(
    root: Annotated[Path, typer.Option(help="project root")] = Path("."),
    remote: Annotated[
        str | None,
        typer.Option(help="s3://BUCKET/PREFIX as the default DVC remote (endpoint: AWS_ENDPOINT_URL[_S3])"),
    ] = None,
) -> None:
    """Set up git and DVC state if missing (DVC with a local remote folder, or the S3 --remote)."""
    from flows.repo_setup import ensure_repo

    try:
        lines = ensure_repo(root, remote)
    except ValueError as exc:
        _fail(str(exc), code=2)
    for line in lines:
        typer.echo(line)


@app.command()
def turn(
    preset: Annotated[str | None, typer.Option(help="named preset from params.yaml, e.g. smoke")] = None,
    params: ParamsOpt = Path("params.yaml"),
    data_dir: DataDirOpt = Path("data"),
    dvc: Annotated[bool, typer.Option(help="keep DVC's books (dvc.lock, cache); off for presets")] = True,
    seed_data: Annotated[
        str | None,
        typer.Option(
            help="seed model data: simulated | lab (data/raw/lab from `flywheel lab import`) | both"
        ),
    ] = None,
    runner: Annotated[
        str | None, typer.Option(help="task runner: thread | dask (default: params.yaml scale.runner)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="threads or Dask worker processes (default: scale.workers)")
    ] = None,
    dask_address: Annotated[
        str | None, typer.Option("--dask-address", help="existing Dask scheduler, tcp://HOST:PORT")
    ] = None,
) -> None:
    """Run one whole flywheel turn as a Prefect flow (embedded server started once).

    `--runner dask` runs the stages on a Dask LocalCluster of worker processes; `--dask-address` on an
    existing scheduler whose workers see this folder (docs/scale.md)."""
    from flows.env import configure_environment
    from flows.stages.base import SEED_DATA

    configure_environment(params.resolve().parent)
    from common.params import load_params
    from flows.runners import describe, make_task_runner, runner_config
    from flows.summary import print_turn_summary
    from flows.turn import flywheel_turn

    if seed_data is not None and seed_data not in SEED_DATA:
        _fail(f"--seed-data {seed_data!r} is not one of {', '.join(SEED_DATA)}", code=2)
    try:
        config = runner_config(load_params(params, preset), runner, workers, dask_address)
        task_runner = make_task_runner(config)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc), code=2)
    use_dvc = dvc and preset is None and data_dir == Path("data") and seed_data is None
    if dvc and not use_dvc:
        typer.echo("note: a preset or another data folder runs without DVC bookkeeping (dvc.lock untouched)")
    if dvc and seed_data is not None:
        typer.echo(
            "note: --seed-data runs without DVC bookkeeping (set turn.seed_data in params.yaml to keep it)"
        )
    typer.echo(f"stages on the {describe(config)}")
    records = flywheel_turn.with_options(task_runner=task_runner)(
        params_file=str(params), preset=preset, data_dir=str(data_dir), use_dvc=use_dvc, seed_data=seed_data
    )
    print_turn_summary(records, params, preset, data_dir)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="stage name, e.g. simulate@seed or train-retrained")],
    params: ParamsOpt = Path("params.yaml"),
    data_dir: DataDirOpt = Path("data"),
    preset: Annotated[str | None, typer.Option(help="named preset from params.yaml")] = None,
) -> None:
    """Run one pipeline stage (what dvc.yaml calls)."""
    from common.params import load_params
    from common.paths import Paths
    from flows.stages import REGISTRY, run_stage

    name = name if name in REGISTRY else name.replace("-", "@", 1)
    if name not in REGISTRY:
        _fail(f"unknown stage; stages: {', '.join(REGISTRY)}")
    p = load_params(params, preset)
    record = run_stage(name, p, Paths.for_params(p, data_dir))
    typer.echo(f"{name}: done in {record['seconds']:.1f} s")


@app.command("dvc-yaml")
def dvc_yaml(check: Annotated[bool, typer.Option(help="exit 1 if dvc.yaml is out of date")] = False) -> None:
    """Render dvc.yaml from the stage registry."""
    from common.io import atomic_write_text
    from flows.dvcfile import render_dvc_yaml

    text = render_dvc_yaml()
    if check:
        if not Path("dvc.yaml").exists() or Path("dvc.yaml").read_text() != text:
            _fail("dvc.yaml is out of date: run `flywheel dvc-yaml`")
        typer.echo("dvc.yaml is up to date")
        return
    atomic_write_text("dvc.yaml", text)
    typer.echo("wrote dvc.yaml")


@app.command()
def simulate(
    preset: Annotated[str, typer.Option(help="seed | field | eval")],
    out: Annotated[Path, typer.Option("--out", help="raw batch folder to write")],
    truth_out: Annotated[Path, typer.Option("--truth-out", help="ground-truth folder to write")],
    devices: Annotated[int, typer.Option(help="number of devices")] = 2,
    hours: Annotated[float, typer.Option(help="hours per device")] = 0.25,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    bundle: Annotated[
        Path | None, typer.Option(help="bundle the devices run (default policy without)")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Simulate one batch of device logs in the raw log contract, with its ground truth."""
    from common.params import load_params
    from fleet.simulate import simulate_batch

    p = load_params(params) if params.exists() else None
    summary = simulate_batch(
        preset,
        devices,
        hours,
        seed,
        out,
        truth_out,
        batch_id=out.name,
        bundle_path=bundle,
        sim_params=p["simulate"] if p else None,
        calibration=p["calibration"]["config"] if p else None,
    )
    _write_json(None, summary)


@app.command()
def ingest(
    raw: Annotated[Path, typer.Argument(help="raw batch folder")],
    out: Annotated[Path, typer.Option("--out", help="curated root folder")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the summary here")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Validate and ingest one raw batch into curated Parquet + feature store; quarantine what is bad."""
    from common.params import load_params
    from ingest.config import IngestConfig
    from ingest.pipeline import ingest_batch
    from runtime.frontend import FrontendConfig

    p = load_params(params)
    summary = ingest_batch(raw, out, IngestConfig.from_params(p), FrontendConfig.from_dict(p["frontend"]))
    _write_json(json_out, summary)
    typer.echo(
        f"received {summary['received']}: ingested {summary['ingested']}, quarantined "
        f"{summary['quarantined']}, already present {summary['already_present']}"
    )


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option(help="bundle (tar or folder)")],
    raw: Annotated[Path, typer.Option(help="raw batch folder")],
    truth: Annotated[Path, typer.Option(help="ground-truth folder")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results here")] = None,
) -> None:
    """Run a bundle's detector over a batch as the devices ran it (back-to-back captures as one stream)
    and count per episode: false triggers, entries and their latency, false absences (docs/evaluation.md).

    With --json, the per-episode rows (entries, false triggers, false absences) go beside it as
    NAME.episodes.jsonl, so you can see which episodes failed."""
    from common.io import atomic_write_jsonl
    from training.evaluate import EvaluationError, evaluate_bundle_rows

    try:
        result, rows = evaluate_bundle_rows(bundle, raw, truth)
    except (EvaluationError, FileNotFoundError) as exc:
        _fail(str(exc), code=2)
    _write_json(json_out, result)
    if json_out is not None:
        atomic_write_jsonl(json_out.with_suffix(".episodes.jsonl"), rows)
    typer.echo(format_evaluation(result), err=json_out is None)


def format_evaluation(m: dict) -> str:
    """The headline figures of an evaluation on one line."""

    def f(key: str, digits: int = 3) -> str:
        return "–" if m.get(key) is None else f"{m[key]:.{digits}f}"

    return (
        f"false triggers/empty h {f('false_triggers_per_empty_hour', 2)} ({m['false_triggers']} in "
        f"{m['empty_hours']:.2f} h)  per device-day {f('false_triggers_per_device_day', 1)}  entries "
        f"{m['entries_detected']}/{m['entries']} (recall {f('entry_recall')}, latency median "
        f"{f('entry_latency_median_s')} s, p95 {f('entry_latency_p95_s')} s)  false absences/occupied h "
        f"{f('false_absences_per_occupied_hour', 2)}"
    )


@app.command()
def package(params: ParamsOpt = Path("params.yaml"), data_dir: DataDirOpt = Path("data")) -> None:
    """Build and sign the firmware bundle from the model the release gate picks (retrained or seed)."""
    stage("package", params, data_dir, None)


@bundle_app.command("verify")
def bundle_verify(bundle: Annotated[Path, typer.Argument(help="bundle .tar")]) -> None:
    """Exit 0 for an intact, correctly signed bundle; non-zero with the reason otherwise."""
    from deploy.operations import verify_with_default_keys

    ok, message = verify_with_default_keys(bundle)
    if not ok:
        _fail(f"{bundle}: {message}", code=2)
    typer.echo(f"{bundle}: ok ({message})")


@bundle_app.command("inspect")
def bundle_inspect(bundle: Annotated[Path, typer.Argument(help="bundle .tar")]) -> None:
    """Print the bundle's manifest in human-readable form."""
    from deploy.operations import inspect_bundle

    typer.echo(inspect_bundle(bundle))


@app.command()
def deploy(
    bundle: Annotated[Path, typer.Argument(help="bundle .tar")],
    device: Annotated[Path, typer.Option(help="device folder")],
) -> None:
    """Install a bundle on a device: exit 0 only when it is installed and active."""
    from deploy.operations import deploy_bundle

    ok, message = deploy_bundle(bundle, device)
    if not ok:
        _fail(message, code=2)
    typer.echo(message)


@app.command()
def rollout(
    bundle: Annotated[Path, typer.Argument(help="bundle .tar")],
    fleet: Annotated[Path, typer.Option(help="fleet folder (one device folder per unit)")],
    devices: Annotated[
        int | None, typer.Option(help="provision field units up to this many (default: params when empty)")
    ] = None,
    canary_fraction: Annotated[float | None, typer.Option(help="canary share of the targets")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Staged rollout (Prefect flow): canaries, gate on their next logs, then the rest or a rollback.

    Exit 0: rolled out to every target; 1: halted (canaries rolled back); 3: some of the rest refused.
    """
    if not bundle.is_file():
        _fail(f"{bundle}: no such bundle file", code=2)
    from flows.env import configure_environment

    configure_environment(params.resolve().parent)
    from common.params import load_params
    from deploy.fleet import list_fleet
    from deploy.staged import HALTED, ROLLED_OUT, format_entry
    from flows.rollout import staged_rollout

    if devices is None and not list_fleet(fleet):
        devices = int(load_params(params)["deploy"]["rollout"]["fleet_devices"])
    try:
        doc = staged_rollout(
            bundle=str(bundle),
            fleet_dir=str(fleet),
            params_file=str(params),
            n_devices=devices,
            canary_fraction=canary_fraction,
        )
    except ValueError as exc:  # nothing to roll out to, bad fraction, unreadable manifest
        _fail(str(exc), code=2)
    for entry in doc["decisions"]:
        typer.echo(format_entry(entry))
    typer.echo(f"outcome: {doc['outcome']} (decision log: {doc['decision_log']})")
    if doc["outcome"] != ROLLED_OUT:
        raise typer.Exit(1 if doc["outcome"] == HALTED else 3)


@device_app.command("provision")
def device_provision(
    directory: Annotated[Path, typer.Argument(help="device folder to create")],
    profile: Annotated[str, typer.Option(help="device profile, e.g. speaker4")],
) -> None:
    """Create a device in factory state: trusted keys, profile, release counter 0."""
    from deploy.operations import provision

    typer.echo(provision(directory, profile))


@device_app.command("status")
def device_status(
    directory: Annotated[Path, typer.Argument(help="device folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Active slot, bundle version, release counter, last refusal and its reason."""
    from deploy.agent import device_status as status

    st = status(directory)
    if as_json:
        typer.echo(json.dumps(st, indent=2, sort_keys=True))
    else:
        for key, value in sorted(st.items()):
            typer.echo(f"{key:16s} {value}")


@app.command()
def serve(
    cron: Annotated[str, typer.Option(help="cron schedule, e.g. '0 3 * * *'")] = "0 3 * * *",
    name: Annotated[str, typer.Option(help="deployment name")] = "nightly-turn",
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Register a scheduled turn with the Prefect server named by PREFECT_API_URL and serve it."""
    if not os.environ.get("PREFECT_API_URL"):
        _fail(
            "PREFECT_API_URL is not set, and schedules need a running Prefect server.\n"
            "  1. start one:   prefect server start --host 127.0.0.1 --port 4200\n"
            "  2. point at it: export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
            "  3. run again:   flywheel serve --cron '0 3 * * *'",
            code=2,
        )
    from flows.env import configure_environment

    configure_environment(params.resolve().parent)
    from flows.turn import flywheel_turn

    typer.echo(f"serving {name} on {os.environ['PREFECT_API_URL']} with cron {cron!r} (Ctrl-C stops)")
    flywheel_turn.serve(name=name, cron=cron, parameters={"params_file": str(params.resolve())})


@app.command()
def server(
    host: Annotated[
        str | None, typer.Option(help="address to listen on (default: scale.server.host)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Prefect API port (default: scale.server.port)")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="postgresql+asyncpg://USER@HOST:PORT/DB of an existing PostgreSQL")
    ] = None,
    postgres: Annotated[
        bool, typer.Option(help="run a local PostgreSQL in scale.server.postgres_dir and use it")
    ] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run a Prefect server (UI off) for scheduled turns, on PostgreSQL with --postgres or --database-url.

    Then: export PREFECT_API_URL=http://HOST:PORT/api and `flywheel serve`. Ctrl-C stops both."""
    from flows.env import configure_environment

    root = params.resolve().parent
    configure_environment(root)
    from common.params import load_params
    from flows.server import LocalPostgres, ServerError, start_prefect_server, stop_process, wait_healthy

    cfg = load_params(params).get("scale", {}).get("server", {})
    host, port = host or cfg.get("host", "127.0.0.1"), int(port or cfg.get("port", 4200))
    if postgres and database_url:
        _fail("--postgres runs its own PostgreSQL; give it or --database-url, not both", code=2)
    pg = None
    try:
        if postgres:
            pg = LocalPostgres(
                root / cfg.get("postgres_dir", ".prefect/postgres"), int(cfg.get("postgres_port", 5433))
            )
            database_url = pg.start().url
            typer.echo(f"PostgreSQL on 127.0.0.1:{pg.port}, data in {pg.data_dir}")
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops both servers, as Ctrl-C does
        log_path = Path(os.environ["PREFECT_HOME"]) / "server.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        proc = start_prefect_server(host, port, database_url, log_path)
        api = f"http://{host}:{port}/api"
        try:
            seconds = wait_healthy(api, proc, float(cfg.get("startup_timeout_s", 90)), log_path)
            typer.echo(f"Prefect server healthy at {api} in {seconds:.1f} s on {database_url or 'SQLite'}")
            typer.echo(f"  export PREFECT_API_URL={api}   # then: flywheel serve --cron '0 3 * * *'")
            typer.echo(f"  log: {log_path} (Ctrl-C stops)")
            proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop_process(proc)
    except ServerError as exc:
        _fail(str(exc), code=2)
    finally:
        if pg is not None:
            pg.stop()


@app.command()
def bench(
    suite: Annotated[
        str,
        typer.Argument(
            help="sim | runtime | ingest | mining | model | mbdp | calibration | deploy | scale | ablation"
        ),
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    quick: Annotated[bool, typer.Option(help="small sizes (minutes → seconds)")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Run a benchmark suite: prints the measured figures and writes them as JSON."""
    from bench.suites import SUITES, run_suite
    from common.params import load_params

    if suite not in SUITES:
        raise typer.BadParameter(f"unknown suite {suite!r} (known: {', '.join(SUITES)})", param_hint="SUITE")
    figures = run_suite(suite, load_params(params), quick=quick)
    _write_json(json_out, figures)
    if json_out is not None:
        typer.echo(json.dumps(figures, indent=2, sort_keys=True, default=str))


@app.command()
def experiment(
    json_out: Annotated[Path, typer.Option("--json", help="results JSON; table and plots go beside it")],
    turns: Annotated[int | None, typer.Option(help="turns per strategy (default: experiment.turns)")] = None,
    seeds: Annotated[
        int | None, typer.Option(help="training/mining seeds (default: experiment.seeds)")
    ] = None,
    quick: Annotated[bool, typer.Option(help="a small fleet whose models still detect arrivals")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compare the flywheel with random, uncertainty, class-balanced random, self-training and the
    every-window ceiling at equal paid labels, in a closed loop (docs/evaluation.md): label efficiency,
    significance, rare-event shares."""
    from rich.progress import Progress

    from bench.experiment import count_steps, experiment_config, run_experiment
    from common.io import atomic_write_json
    from common.params import load_params

    p = load_params(params)
    ex = experiment_config(p, quick)
    n_turns, n_seeds = turns or int(ex["turns"]), seeds or int(ex["seeds"])
    out_dir = json_out.parent / json_out.stem
    with Progress() as bar:
        task = bar.add_task("experiment", total=count_steps(ex, n_turns, n_seeds))
        results = run_experiment(
            p, out_dir, n_turns, n_seeds, quick, progress=lambda d: bar.update(task, advance=1, description=d)
        )
    atomic_write_json(json_out, results)
    typer.echo((out_dir / "results.md").read_text())
    typer.echo(f"wrote {json_out} and {out_dir}/ (results.md, plots/)")


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])


if __name__ == "__main__":  # python -m flows.cli
    main()
