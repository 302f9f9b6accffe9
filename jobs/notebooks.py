"""Renders the drift notebooks: ``python -m jobs.notebooks --render [--location DIR] [--out DIR]``.

Flow: the nightly job writes artefacts (``jobs.artefacts``) → papermill executes
``notebooks/drift_report.ipynb`` and ``notebooks/drift_trends.ipynb`` against them (the
``report_location`` parameter) → nbconvert renders each executed notebook to HTML. ``make report``
runs this; the tests call ``execute_notebook`` so a failing cell fails CI.

The kernel is ``python3``. Its kernelspec (``ipykernel install --sys-prefix``, in the venv) runs
``python``, which jupyter_client replaces with the interpreter running papermill, so the
notebooks see this venv and its ``jobs`` package.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("drift_report", "drift_trends")
KERNEL = "python3"
DEFAULT_LOCATION = "out/reports"
DEFAULT_OUT = "out/notebooks"
CELL_TIMEOUT_SECONDS = 300


def execute_notebook(
    name: str,
    location: str,
    out_dir: Path,
    *,
    region: str | None = None,
    run_id: str | None = None,
    kernel_name: str = KERNEL,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill against ``location``; returns the
    executed copy in ``out_dir``. A failing cell raises papermill's ``PapermillExecutionError``."""
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.ipynb"
    # Local paths are made absolute: the kernel runs with the notebooks' folder as its cwd.
    if "://" not in location:
        location = str(Path(location).resolve())
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{name}.ipynb"),
        str(output),
        parameters={"report_location": location, "region": region, "run_id": run_id},
        kernel_name=kernel_name,
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
        execution_timeout=CELL_TIMEOUT_SECONDS,
        kernel_manager_class=_ipc_kernel_manager(),
    )
    return output


def _ipc_kernel_manager() -> type[Any]:
    """A kernel manager that talks to the kernel over Unix sockets (in Jupyter's runtime
    directory, named after a fresh id) instead of TCP on localhost: ipykernel warns on every
    start that unencrypted TCP is "susceptible to eavesdropping" (ipykernel.kernelapp), which
    ``make report`` printed; local sockets are what the warning itself advises."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            # Each kernel its own socket paths: left to itself jupyter_client names them
            # "kernel-ipc-1".."-5" in the kernel's working directory (the notebooks' folder,
            # the same for every render), picking the first numbers not yet taken; two renders
            # at once (two test workers) took the same ones and each client talked to the
            # other's kernel ("Invalid Signature").
            Path(jupyter_runtime_dir()).mkdir(parents=True, exist_ok=True)
            sockets = Path(jupyter_runtime_dir()) / f"kernel-{uuid.uuid4().hex}-ipc"
            super().__init__(transport="ipc", ip=str(sockets), **kwargs)

    return IpcKernelManager


def to_html(notebook: Path) -> Path:
    """The executed notebook as a standalone HTML page beside it: prose and outputs, no code
    (nbconvert's ``--no-input``; the code is in the notebook for whoever wants it)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def render(
    location: str, out_dir: Path, *, region: str | None = None, run_id: str | None = None
) -> list[Path]:
    """Execute both notebooks against ``location`` and render them to HTML in ``out_dir``."""
    return [
        to_html(execute_notebook(name, location, out_dir, region=region, run_id=run_id))
        for name in NOTEBOOKS
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.notebooks", description=__doc__)
    parser.add_argument("--render", action="store_true", help="execute and render both notebooks")
    parser.add_argument(
        "--location",
        default=os.environ.get("REPORT_LOCATION", DEFAULT_LOCATION),
        help="the nightly job's report location: a directory or s3://bucket/prefix "
        f"(default: $REPORT_LOCATION or {DEFAULT_LOCATION})",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--region", default=None, help="the S3 bucket's region (s3:// only)")
    parser.add_argument(
        "--run-id", default=None, help="the run the drift report shows (default: latest with drift)"
    )
    args = parser.parse_args(argv)
    if not args.render:
        parser.print_help()
        return 0
    try:
        pages = render(args.location, Path(args.out), region=args.region, run_id=args.run_id)
    except Exception as error:  # reported and non-zero: make report must fail visibly
        print(f"notebooks: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for page in pages:
        print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
