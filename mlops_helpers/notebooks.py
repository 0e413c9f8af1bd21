"""Run the workshop's notebooks headless with papermill.

Parameters are checked against the notebook's ``parameters`` cell before anything runs (a
typo is an error, not a silently used default). A secret (a name such as ``ibm_api_key``) is
never written into the notebook: the kernel gets it as ``MLOPS_<NAME>`` in its environment,
where the settings read it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers import paths
from mlops_helpers.config import is_secret_key
from mlops_helpers.errors import ConfigError, UnknownNameError, WorkshopError
from mlops_helpers.notebook_session import HEADLESS_ENV
from mlops_helpers.scenarios import find_scenario, scenario_names

PREFLIGHT = "preflight"  # the machine check: the one notebook that is no scenario


def notebook_names() -> list[str]:
    return [PREFLIGHT, *scenario_names()]


class NotebookFailed(WorkshopError):
    """A notebook's cell raised; names the notebook, the cell and the error."""


@dataclass(frozen=True)
class NotebookRun:
    name: str
    output: Path
    seconds: float
    error: str | None = None
    failing_cell: str | None = None  # "In [7]: ctx.run('deploy')", when a cell raised

    @property
    def status(self) -> str:
        return "FAILED" if self.error else "ok"


def find_notebook(name: str, directory: Path | None = None) -> Path:
    """``seldon_kind`` -> ``notebooks/01_seldon_kind.ipynb``."""
    directory = directory or paths.notebooks_dir()
    if name not in notebook_names():
        raise UnknownNameError("notebook", name, notebook_names())
    path = _notebook_path(name, directory)
    if path is None:
        raise WorkshopError(f"notebook '{name}' is not in {directory} yet")
    return path


def _notebook_path(name: str, directory: Path) -> Path | None:
    spec = find_scenario(name)
    if spec is not None:
        path = spec.notebook_path(directory)
        return path if path.is_file() else None
    matches = sorted(directory.glob(f"[0-9][0-9]_{name}.ipynb"))
    return matches[0] if matches else None


def existing_notebooks(directory: Path | None = None) -> list[str]:
    directory = directory or paths.notebooks_dir()
    return [n for n in notebook_names() if _notebook_path(n, directory) is not None]


def notebook_parameters(name: str) -> list[str]:
    """The names the notebook's ``parameters`` cell assigns."""
    import papermill

    return sorted(papermill.inspect_notebook(str(find_notebook(name))))


def _secret_settings(name: str) -> list[str] | None:
    """The secret settings a scenario's stages read (None for the preflight notebook, which
    only looks at what the environment holds)."""
    spec = find_scenario(name)
    if spec is None:
        return None
    return [n for n, s in spec.declared().items() if s.secret]


def split_params(
    name: str, params: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(notebook parameters, kernel environment) for ``params``; unknown names are an error.

    A secret-looking name is a setting, never a parameter: it goes to the environment as
    ``MLOPS_<NAME>`` so it is not written into the executed notebook.
    """
    known = notebook_parameters(name)
    secrets = _secret_settings(name)
    parameters: dict[str, Any] = {}
    environment: dict[str, str] = {}
    for key, value in (params or {}).items():
        if is_secret_key(key):
            if secrets is not None and key not in secrets:
                raise ConfigError(
                    f"notebook '{name}' reads no secret '{key}'; the secrets it "
                    f"reads: {', '.join(secrets) or '(none)'}"
                )
            environment[f"MLOPS_{key.upper()}"] = str(value)
        elif key in known:
            spec = find_scenario(name)  # a declared type and range hold
            declared = spec.declared().get(key) if spec is not None else None
            parameters[key] = declared.check(value) if declared is not None else value
        else:
            raise ConfigError(
                f"notebook '{name}' has no parameter '{key}'; its parameters: "
                f"{', '.join(known)} (secrets such as ibm_api_key go to the environment)"
            )
    return parameters, environment


def params_per_notebook(
    names: Sequence[str], params: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """For a run of several notebooks: each gets the parameters its cell declares (and every
    secret); a name that no notebook declares is an error, raised before anything runs."""
    known = {name: notebook_parameters(name) for name in names}
    for key in params or {}:
        if not is_secret_key(key) and not any(key in declared for declared in known.values()):
            every = sorted({n for declared in known.values() for n in declared})
            raise ConfigError(
                f"no notebook of this run has a parameter '{key}'; their "
                f"parameters: {', '.join(every)}"
            )
    plan = {
        name: {k: v for k, v in (params or {}).items() if is_secret_key(k) or k in known[name]}
        for name in names
    }
    for name, subset in plan.items():
        split_params(name, subset)  # types, ranges and secret names, before anything runs
    return plan


@contextmanager
def _environment(extra: Mapping[str, str]) -> Iterator[None]:
    """``extra`` in os.environ while the kernel starts (it inherits it), then as before."""
    before = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def kernel_config() -> Any:
    """IPC between papermill and the kernel: local sockets, so no 'TCP without encryption'.

    Each kernel gets its own socket paths: jupyter_client's default (``kernel-ipc-N`` in the
    kernel's working folder) is the same for two notebooks run at once from one folder.
    """
    import tempfile
    import uuid

    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(tempfile.gettempdir()) / f"kernel-{uuid.uuid4().hex}")
    # the kernel's own log only ever says things like "KeyboardInterrupt caught in kernel"
    # (jupyter_client interrupts every kernel it shuts down); a cell's error is in the notebook
    config.NotebookClient.extra_arguments = ["--IPKernelApp.log_level=CRITICAL"]
    return config


def _cell_label(source: str, exec_count: int | None) -> str:
    """``In [7]: ctx.run("deploy")``: what a person sees beside the cell in Jupyter."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"In [{exec_count}]: {first[:60]}"


def run_notebook(
    name: str,
    *,
    backend: str = "local",
    params: Mapping[str, Any] | None = None,
    output_dir: Path | None = None,
    timeout: int = 900,
) -> NotebookRun:
    """Execute one notebook into ``build/`` (written even when a cell fails)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = find_notebook(name)
    parameters, environment = split_params(name, params)
    out_dir = output_dir or paths.build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / source.name
    start = time.monotonic()
    error = failing = None
    environment[HEADLESS_ENV] = "1"  # a failing stage tears down at once: nobody is looking
    try:
        with _environment(environment):
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters={"backend": backend, **parameters},
                kernel_name="python3",
                cwd=str(source.parent),
                progress_bar=False,
                execution_timeout=timeout,
                config=kernel_config(),
            )
    except PapermillExecutionError as exc:
        failing = _cell_label(exc.source, exc.exec_count)
        error = f"{source.name}: cell {failing} raised {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, bad parameters, ...
        error = f"{source.name}: {type(exc).__name__}: {exc}"
    return NotebookRun(name, output, time.monotonic() - start, error, failing)


def run_notebooks(
    names: Sequence[str],
    *,
    backend: str = "local",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    output_dir: Path | None = None,
    jobs: int = 1,
    started: Callable[[str], None] | None = None,
    finished: Callable[[NotebookRun], None] | None = None,
) -> list[NotebookRun]:
    """Run ``names``, ``jobs`` at a time (each in its own process when more than one: the
    notebooks mostly wait for servers to start, so two share a core well). ``started`` and
    ``finished`` are told as it goes; the runs come back in the order of ``names``."""
    params = params or {}
    if jobs <= 1:
        runs = []
        for name in names:
            if started:
                started(name)
            runs.append(
                run_notebook(name, backend=backend, params=params.get(name), output_dir=output_dir)
            )
            if finished:
                finished(runs[-1])
        return runs
    from concurrent.futures import ProcessPoolExecutor, as_completed

    done: dict[str, NotebookRun] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(
                run_notebook, name, backend=backend, params=params.get(name), output_dir=output_dir
            )
            for name in names
        ]
        for future in as_completed(futures):
            result = future.result()
            done[result.name] = result
            if finished:
                finished(result)
    return [done[name] for name in names]


def format_summary(runs: Sequence[NotebookRun], root: Path | None = None) -> str:
    """A table: notebook, seconds, status, output path, first failing cell."""
    root = root or Path.cwd()

    def shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            return str(path)

    rows = [("notebook", "seconds", "status", "output", "first failing cell")]
    rows += [
        (
            r.name,
            f"{r.seconds:.1f}",
            r.status,
            shown(r.output),
            r.failing_cell or ("-" if not r.error else "(no cell: see the error above)"),
        )
        for r in runs
    ]
    failed = sum(1 for r in runs if r.error)
    rows.append(
        (
            "total",
            f"{sum(r.seconds for r in runs):.1f}",
            f"{failed} FAILED" if failed else "ok",
            f"{len(runs)} notebook(s)",
            "",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    )
