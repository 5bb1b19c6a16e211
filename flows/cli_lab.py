"""`flywheel lab`: lab recordings in (ingest/lab_import.py).

- `flywheel lab import DIR --out data/raw/<batch> --truth-out data/truth/<batch> --labels LABELS.csv`
  (or `--folders FOLDERS.yaml`: folder name -> {event_type, motion_class[, carrier_hz]}) turns a folder
  of WAV recordings into a raw batch in the contract and its truth; bad files are quarantined under
  data/curated/quarantine/<batch>-import/ (or --quarantine-out) with file and reason.

Thin like flows/cli.py: the work is a plain function of the packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

lab_app = typer.Typer(
    help="Lab recordings: import a folder of WAV files as a raw batch.", no_args_is_help=True
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def read_folder_map(path: Path) -> dict:
    """The folder-label YAML as a mapping (validated by ingest.lab_import.folder_labels_from)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        _fail(f"{path}: cannot read the folder map ({exc})")
        raise  # unreachable: _fail exits


@lab_app.command("import")
def lab_import(
    src: Annotated[Path, typer.Argument(help="folder of WAV recordings (searched recursively)")],
    out: Annotated[Path, typer.Option("--out", help="raw batch folder to write, e.g. data/raw/lab")],
    truth_out: Annotated[Path, typer.Option("--truth-out", help="truth folder, e.g. data/truth/lab")],
    labels: Annotated[
        Path | None, typer.Option(help="CSV: file, event_type, motion_class[, t0_s, t1_s, carrier_hz]")
    ] = None,
    folders: Annotated[Path | None, typer.Option(help="YAML: folder -> {event_type, motion_class}")] = None,
    quarantine_out: Annotated[
        Path | None, typer.Option(help="quarantine root (default: data/curated/quarantine)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the summary here")] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read")] = Path("params.yaml"),
) -> None:
    """Import a folder of lab WAV recordings as a raw batch (captures.jsonl, pcm/, dialogue.jsonl) + truth."""
    from rich.progress import Progress

    from common.io import atomic_write_json
    from common.params import load_params
    from ingest.config import LabImportConfig
    from ingest.lab_import import LabImportError, import_lab

    folder_map = read_folder_map(folders) if folders is not None else None
    files = sum(1 for p in src.rglob("*") if p.suffix.lower() == ".wav") if src.is_dir() else 0
    with Progress(transient=True) as bar:
        task = bar.add_task("lab import", total=files)

        def step(name: str) -> None:
            bar.update(task, advance=1, description=name)

        try:
            summary = import_lab(
                src, out, truth_out, LabImportConfig.from_params(load_params(params)), labels_csv=labels,
                folder_labels=folder_map, quarantine_root=quarantine_out, progress=step,
            )  # fmt: skip
        except LabImportError as exc:
            _fail(str(exc))
    if json_out is not None:
        atomic_write_json(json_out, summary)
    for c in summary["captures"]:
        given = "" if c["carrier_given_hz"] is None else f" (given {c['carrier_given_hz']:g} Hz)"
        typer.echo(
            f"{c['capture_id']}  {c['source']}: carrier {c['carrier_estimate_hz']:.1f} Hz estimated{given}"
        )
    typer.echo(
        f"found {summary['found']}: imported {summary['imported']}, quarantined {summary['quarantined']}"
        + (f" {summary['reasons']} -> {summary['quarantine']}" if summary["quarantined"] else "")
    )
