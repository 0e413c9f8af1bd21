"""The model project's own tests and lint pass where they live (scenarios/dvc_cml)."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from mlops_helpers.dvc_cml.layout import template_dir
from mlops_helpers.dvc_cml.shell import tool


def test_template_unit_tests_pass() -> None:
    # the project's tests need no pytest plugin; the workshop's would cost seconds to load
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=template_dir(), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_template_lints_clean() -> None:
    done = subprocess.run([tool("ruff"), "check", "--no-cache", "."], cwd=template_dir(),
                          capture_output=True, text=True, timeout=120)
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
