"""Run the course notebooks (or any notebook with a ``parameters`` cell) headless with papermill.

``python -m mdic_lab.experiments.notebooks --out notebook_runs`` executes every notebook of
``notebooks/`` in teaching order with its default parameters; each executed copy and its
``metrics.json`` land in ``notebook_runs/<notebook name>/``. Pass ``--only 01 03`` to run a
subset, a notebook path (``ablations/run_all.ipynb``) to run a notebook outside
``notebooks/``, and ``-p name value`` to override a parameter in every notebook that
declares it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"


def course_notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered course notebooks in teaching order, optionally filtered by number prefix."""
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = set(only)
        unknown = wanted - {p.name[:2] for p in paths}
        if unknown:
            raise ValueError(
                f"unknown notebook number(s) {sorted(unknown)} "
                f"(expected some of: {', '.join(p.name[:2] for p in paths)})"
            )
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def resolve_notebook(path) -> Path:
    """``path`` as given if it exists (absolute or relative to the working directory), else
    relative to the repository root; a clear error when neither exists or it is no notebook."""
    path = Path(path)
    candidates = [path] if path.is_absolute() else [path, ROOT / path]
    for p in candidates:
        if p.is_file():
            if p.suffix != ".ipynb":
                raise ValueError(f"{p} is not a notebook (expected a .ipynb file)")
            return p.resolve()
    raise FileNotFoundError(f"notebook {path} does not exist "
                            f"(looked in: {', '.join(str(p) for p in candidates)})")


def declared_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    import ast

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            targets = [t for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
            names = set()
            for t in targets:  # `a = 1` and `a, b = 1, 2`
                elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
                names |= {e.id for e in elts if isinstance(e, ast.Name)}
            return names
    raise ValueError(f"{Path(path).name}: no code cell tagged 'parameters'")


def run_notebook(path, output_dir, **parameters) -> dict:
    """Execute one notebook with papermill into ``output_dir``; return its ``metrics.json``.

    ``path`` may be any notebook (``notebooks/03_...ipynb``, ``ablations/run_all.ipynb``, an
    absolute path). It needs a ``parameters`` cell with an ``output_dir`` entry and must
    write ``metrics.json`` there (see ``mdic_lab.experiments.claims.write_metrics``). The
    kernel runs in the repository root. Unknown parameters are refused.
    """
    import papermill as pm

    path = resolve_notebook(path)
    declared = declared_parameters(path)
    if "output_dir" not in declared:
        raise ValueError(f"{path.name}: its parameters cell has no output_dir")
    unknown = set(parameters) - declared
    if unknown:
        raise ValueError(f"{path.name}: unknown parameter(s) {sorted(unknown)} "
                         f"(expected some of: {', '.join(sorted(declared))})")
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(path),
        str(output_dir / path.name),
        parameters={**parameters, "output_dir": str(output_dir)},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    metrics = output_dir / "metrics.json"
    if not metrics.exists():
        raise FileNotFoundError(f"{path.name} ran but wrote no {metrics}")
    with open(metrics) as f:
        return json.load(f)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdic_lab.experiments.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="NOTEBOOK",
                        help="notebook files to run (e.g. ablations/run_all.ipynb); "
                             "without them and without --only, every course notebook runs")
    parser.add_argument("--out", default="notebook_runs", help="output folder (default: %(default)s)")
    parser.add_argument("--only", nargs="*", help="course notebook numbers to run, e.g. 01 03")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (JSON value) in notebooks that declare it")
    args = parser.parse_args(argv)
    try:
        notebooks = [resolve_notebook(p) for p in args.paths]
        if args.only or not args.paths:
            notebooks = course_notebooks(args.only) + notebooks
        declared = {path: declared_parameters(path) for path in notebooks}
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    overrides = {k: _parse_value(v) for k, v in args.p}
    unused = set(overrides) - set().union(*declared.values())
    if unused:
        print(f"error: parameter(s) {sorted(unused)} declared by none of the notebooks to run "
              f"({', '.join(p.name for p in notebooks)})", file=sys.stderr)
        return 2
    failed = []
    for path in notebooks:
        params = {k: v for k, v in overrides.items() if k in declared[path]}
        t0 = time.perf_counter()
        try:
            metrics = run_notebook(path, Path(args.out) / path.stem, **params)
        except Exception as e:  # report and go on with the next notebook
            failed.append(path.name)
            print(f"FAILED {path.name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  file=sys.stderr)
            continue
        claims = metrics.get("claims", [])
        held = sum(bool(c.get("holds")) for c in claims)
        print(f"{path.name}: {held}/{len(claims)} claims hold "
              f"({time.perf_counter() - t0:.1f} s) -> {Path(args.out) / path.stem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
