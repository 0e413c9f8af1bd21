"""A few ``dvc exp run --set-param`` variants and their ``dvc exp show`` table.

Experiments run in the working repo; afterwards the workspace goes back to the committed
branch, so the experiments never leak into the pull request.
"""

from __future__ import annotations

import io
from typing import Any

from mlops_helpers.dvc_cml.project import read_params
from mlops_helpers.dvc_cml.shell import Shell

SHOWN = ("Experiment", "rev")


def run_experiments(sh: Shell, variants: list[dict[str, Any]]) -> list[str]:
    """One experiment per variant; returns the experiment names DVC gave them."""
    read_params(sh.cwd)
    names = []
    for variant in variants:
        sets = [arg for key, value in variant.items() for arg in ("-S", f"{key}={value}")]
        out = sh.dvc("exp", "run", *sets).stdout
        names += [name.strip() for line in out.splitlines()
                  if line.startswith("Ran experiment") for name in
                  line.partition(":")[2].split(",")]
    # back to the committed branch: params, lock, metrics from git, outputs from the cache
    sh.git("checkout", "--", "params.yaml", "dvc.lock", "metrics.json", "plots")
    sh.dvc("checkout", "-q")
    return names


def experiment_table(sh: Shell) -> Any:
    """``dvc exp show --csv`` as a DataFrame: one row per commit or experiment."""
    import pandas as pd

    text = sh.dvc("exp", "show", "--csv", "--no-pager", "--only-changed").stdout
    table = pd.read_csv(io.StringIO(text))
    keep = [c for c in table.columns
            if c in SHOWN or c.startswith(("metrics.json:", "params.yaml:"))
            or c in {"accuracy", "f1_macro", "log_loss", "train.C", "train.max_iter"}]
    return table[keep] if keep else table
