"""`flywheel report`: the turn page (data/reports/<turn>/index.html) from the command line.

- `flywheel report open [TURN]` prints the page's path and opens it where a desktop browser exists.
- `flywheel report compare TURN_A TURN_B [--out PAGE]` writes one page with both turns side by side.
- `flywheel report check [TURN]` loads the page in headless Chromium: images decoded, no request
  left the machine, no console error; saves a screenshot beside the page.

TURN is a turn id under DATA_DIR/reports/ or a folder holding a report.json. Thin like flows/cli.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

report_app = typer.Typer(
    help="The turn report page: open it, compare two turns, check it in a browser.", no_args_is_help=True
)

TurnArg = Annotated[str | None, typer.Argument(help="turn id (default: params turn.id) or a report folder")]
ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="data root (default: data)")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def report_folder(turn: str | None, params: Path, data_dir: Path) -> Path:
    """The report folder of a turn id (under data_dir/reports) or of a folder given as a path."""
    if turn is None:
        from common.params import load_params

        turn = load_params(params)["turn"]["id"]
    as_path = Path(turn)
    folder = as_path if (as_path / "report.json").exists() else data_dir / "reports" / turn
    if not (folder / "report.json").exists():
        _fail(f"{folder / 'report.json'}: no turn report (run `flywheel stage report` or a whole turn first)")
    return folder


def _desktop_browser() -> bool:
    """Only open a browser where one can show a window (never a text browser on a headless box)."""
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


@report_app.command("open")
def report_open(
    turn: TurnArg = None,
    params: ParamsOpt = Path("params.yaml"),
    data_dir: DataDirOpt = Path("data"),
    browser: Annotated[bool, typer.Option(help="open it in the desktop browser when there is one")] = True,
) -> None:
    """Print the turn page's path; open it in a browser where a desktop exists."""
    from flows.report import PAGE_NAME

    page = report_folder(turn, params, data_dir) / PAGE_NAME
    if not page.exists():
        _fail(f"{page}: no page in this report folder (written by the report stage)")
    typer.echo(str(page.resolve()))
    if browser and _desktop_browser():
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@report_app.command("compare")
def report_compare(
    turn_a: Annotated[str, typer.Argument(help="first turn id or report folder")],
    turn_b: Annotated[str, typer.Argument(help="second turn id or report folder")],
    out: Annotated[
        Path | None, typer.Option(help="page to write (default: DATA_DIR/reports/compare-A-B/index.html)")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
    data_dir: DataDirOpt = Path("data"),
) -> None:
    """Write one page with both turns' figures side by side."""
    from common.io import atomic_write_text, read_json
    from flows.report import PAGE_NAME
    from flows.report_page import render_compare

    folders = [report_folder(t, params, data_dir) for t in (turn_a, turn_b)]
    reports = [read_json(f / "report.json") for f in folders]
    if out is None:
        out = data_dir / "reports" / f"compare-{reports[0]['turn']}-{reports[1]['turn']}" / PAGE_NAME
    atomic_write_text(out, render_compare((reports[0], folders[0]), (reports[1], folders[1])))
    typer.echo(str(out.resolve()))


@report_app.command("check")
def report_check(
    turn: TurnArg = None,
    params: ParamsOpt = Path("params.yaml"),
    data_dir: DataDirOpt = Path("data"),
) -> None:
    """Load the page in headless Chromium; exit 1 when an image failed, a request left, or an error logged."""
    from flows.page_check import check_page, find_browser
    from flows.report import PAGE_NAME

    folder = report_folder(turn, params, data_dir)
    if find_browser() is None:
        _fail("no Chromium on this machine (apt-get install chromium, or set FLYWHEEL_CHROMIUM)")
    result = check_page(folder / PAGE_NAME, folder / "screenshot.png")
    typer.echo(
        f"{result.url}: {len(result.images)} images, {len(result.requests)} requests, "
        f"page {result.page_size[0]}x{result.page_size[1]} px, screenshot {result.screenshot}"
    )
    for problem in result.problems:
        typer.echo(f"  {problem}")
    if result.problems:
        raise typer.Exit(1)
