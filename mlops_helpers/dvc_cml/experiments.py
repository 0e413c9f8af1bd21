"""A few ``dvc exp run --set-param`` variants and their ``dvc exp show`` table.

Each experiment runs in its own temporary copy of the repo (``--temp``), all of them side by
side: the workspace is never touched, so the experiments cannot leak into the pull request,
and two variants take about the time of one on a machine with two cores. ``--wait-for-lock``
lets each wait its turn for DVC's repo lock (held briefly while an experiment is queued and
while its result is collected) instead of failing.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlops_helpers.dvc_cml.project import read_params
from mlops_helpers.dvc_cml.shell import Shell

SHOWN = ("Experiment", "rev")


def run_experiments(sh: Shell, variants: list[dict[str, Any]]) -> list[str]:
    """One experiment per variant, run concurrently; returns the names DVC gave them, in
    the order of ``variants``."""
    read_params(sh.cwd)

    def run(variant: dict[str, Any]) -> list[str]:
        sets = [arg for key, value in variant.items() for arg in ("-S", f"{key}={value}")]
        out = sh.dvc("--wait-for-lock", "exp", "run", "--temp", *sets).stdout
        return [
            name.strip()
            for line in out.splitlines()
            if line.startswith("Ran experiment")
            for name in line.partition(":")[2].split(",")
        ]

    # threads only wait: each experiment is its own dvc process
    with ThreadPoolExecutor(max_workers=max(1, len(variants))) as pool:
        return [name for names in pool.map(run, variants) for name in names]


def experiment_table(sh: Shell) -> Any:
    """``dvc exp show --csv`` as a DataFrame: one row per commit or experiment."""
    import pandas as pd

    text = sh.dvc("exp", "show", "--csv", "--no-pager", "--only-changed").stdout
    table = pd.read_csv(io.StringIO(text))
    keep = [
        c
        for c in table.columns
        if c in SHOWN
        or c.startswith(("metrics.json:", "params.yaml:"))
        or c in {"accuracy", "f1_macro", "log_loss", "train.C", "train.max_iter"}
    ]
    return table[keep] if keep else table
