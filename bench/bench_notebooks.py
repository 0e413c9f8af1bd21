"""Per-notebook wall time (median of several papermill runs) beside a floor notebook.

The floor notebook holds only the import lines of the same notebook, so the ratio shows
what the workshop's own steps cost above starting a kernel and importing the libraries.

    python bench/bench_notebooks.py [NAME ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nbformat
from common import summary, timed, write_result

from mlops_helpers.notebooks import existing_notebooks, find_notebook, run_notebook


def floor_notebook(source: Path, target: Path) -> Path:
    """A notebook with one cell: every import line of ``source``."""
    nb = nbformat.read(source, as_version=4)
    imports: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            is_import = stripped.startswith(("import ", "from ")) and " import " in f" {stripped}"
            if is_import and not line.startswith((" ", "\t")) and stripped not in imports:
                imports.append(stripped)
    floor = nbformat.v4.new_notebook()
    floor.metadata = nb.metadata
    parameters = nbformat.v4.new_code_cell("backend = 'local'")
    parameters.metadata["tags"] = ["parameters"]
    floor.cells = [parameters, nbformat.v4.new_code_cell("\n".join(imports) or "pass")]
    nbformat.write(floor, target)
    return target


def run_floor(path: Path, out_dir: Path) -> None:
    import papermill

    papermill.execute_notebook(str(path), str(out_dir / path.name), kernel_name="python3",
                               progress_bar=False, cwd=str(path.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    names = args.names or existing_notebooks()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name in names:
            source = find_notebook(name)
            floor = floor_notebook(source, source.parent / f".floor_{source.name}")
            try:
                floor_s = timed(lambda floor=floor: run_floor(floor, out), args.repeat)
            finally:
                floor.unlink(missing_ok=True)
            errors: list[str] = []

            def once(name: str = name, errors: list[str] = errors) -> None:
                result = run_notebook(name, output_dir=out)
                if result.error:
                    errors.append(result.error)

            notebook_s = timed(once, args.repeat)
            results[name] = {
                "notebook_s": summary(notebook_s),
                "floor_s": summary(floor_s),
                "ratio_median": summary(notebook_s)["median"] / summary(floor_s)["median"],
                "errors": errors,
            }
            print(f"{name}: median {results[name]['notebook_s']['median']:.1f}s "
                  f"(floor {results[name]['floor_s']['median']:.1f}s)", flush=True)
    write_result("notebooks", {"repeat": args.repeat, "notebooks": results})


if __name__ == "__main__":
    main()
