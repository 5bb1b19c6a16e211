"""`flywheel labels`: the Label Studio round trip for real annotators (mining/label_studio.py).

- `flywheel labels export --picks PICKS.parquet --curated CURATED_BATCH_DIR --out DIR` writes
  DIR/tasks.json (import it into a Label Studio project), DIR/label_config.xml (the project's
  labelling config) and DIR/images/*.png (one spectrogram per pick, referenced from the tasks).
- `flywheel labels import EXPORT.json --out LABELS.parquet [--confidence C]` turns Label Studio's
  JSON export into a label table (docs/CONTRACTS.md) with source "label_studio".

Thin like flows/cli.py: heavy libraries (polars, matplotlib) are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

labels_app = typer.Typer(
    help="Label Studio round trip: export picks as tasks, import completed annotations.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@labels_app.command("export")
def labels_export(
    picks: Annotated[Path, typer.Option("--picks", help="picks table (Parquet with window_id[, strategy])")],
    curated: Annotated[Path, typer.Option("--curated", help="curated batch folder the picks come from")],
    out: Annotated[Path, typer.Option("--out", help="folder for tasks.json, label_config.xml, images/")],
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read")] = Path("params.yaml"),
) -> None:
    """Export picks as Label Studio tasks, one spectrogram PNG per window."""
    import polars as pl

    from common.params import load_params
    from mining.config import LabelStudioConfig
    from mining.label_studio import export_tasks
    from runtime.frontend import FrontendConfig

    for path, what in ((picks, "picks table"), (curated / "windows.parquet", "curated batch")):
        if not path.exists():
            _fail(f"{path}: no such {what}")
    table = pl.read_parquet(picks)
    if "window_id" not in table.columns:
        _fail(f"{picks}: no window_id column (columns: {', '.join(table.columns)})")
    try:
        p = load_params(params)
        ls = LabelStudioConfig.from_params(p)
        tasks = export_tasks(
            table,
            curated,
            out,
            ls,
            FrontendConfig.from_dict(p["frontend"]),
            int(p["ingest"]["context_frames"]),
        )
    except ValueError as exc:  # picks outside the batch, repeated picks, bad params
        _fail(str(exc))
    typer.echo(f"wrote {table.height} tasks to {tasks} (labelling config: {out / 'label_config.xml'})")


@labels_app.command("import")
def labels_import(
    export: Annotated[Path, typer.Argument(help="Label Studio JSON export of the completed tasks")],
    out: Annotated[Path, typer.Option("--out", help="label table to write (Parquet)")],
    confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="confidence recorded for the annotators' labels")
    ] = 1.0,
) -> None:
    """Import completed Label Studio annotations as a label table (source "label_studio")."""
    from common.io import atomic_write_parquet
    from mining.label_studio import import_annotations

    if not export.is_file():
        _fail(f"{export}: no such export file")
    try:
        table = import_annotations(export, confidence=confidence)
    except ValueError as exc:  # LabelStudioError names the file and the field
        _fail(str(exc))
    atomic_write_parquet(out, table)
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    typer.echo(f"imported {table.height} labels into {out} (by class index: {counts})")
