"""The model project lints clean where it lives (scenarios/dvc_cml) and its DVC pipeline
declares what DVC needs. Its own tests ("4 passed") run in the ``unit_tests`` stage of the
Jenkins-shaped branch build (``test_jenkins_run.py``), on a clone of this very template."""

from __future__ import annotations

import subprocess

import yaml

from mlops_helpers.dvc_cml.layout import template_dir
from mlops_helpers.dvc_cml.shell import tool


def test_template_lints_clean() -> None:
    done = subprocess.run(
        [tool("ruff"), "check", "--no-cache", "."],
        cwd=template_dir(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout


def test_dvc_yaml_declares_deps_params_outs_metrics_plots() -> None:
    stages = yaml.safe_load((template_dir() / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["prepare", "train", "evaluate"]
    params = yaml.safe_load((template_dir() / "params.yaml").read_text())
    for stage in stages.values():
        assert stage["deps"], stage
    for name in ("prepare", "train"):
        assert stages[name]["outs"] and stages[name]["params"]
        for dotted in stages[name]["params"]:
            section, key = dotted.split(".")
            assert key in params[section], dotted
    assert "metrics.json" in stages["evaluate"]["metrics"][0]
    assert "plots/confusion.csv" in stages["evaluate"]["plots"][0]
