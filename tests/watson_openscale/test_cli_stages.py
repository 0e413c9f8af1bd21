"""Each stage in its own process, as the Jenkinsfile's `sh` steps run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.support import leftover_processes


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    env = {**os.environ, "MLOPS_RUN_ROOT": str(root), "MLOPS_ATTENDEE": "cli"}
    return subprocess.run([str(exe), "watson_openscale", *args], capture_output=True, text=True,
                          timeout=180, check=False, env=env)


@pytest.mark.slow
def test_stages_one_process_each_then_the_gate_fails_in_a_later_build(tmp_path: Path) -> None:
    try:
        outputs = {}
        for stage in PIPELINE.stage_names()[:-1]:
            done = cli(tmp_path, stage)
            assert done.returncode == 0, f"{stage}: {done.stdout}\n{done.stderr}"
            outputs[stage] = done.stdout
        assert "quality gate passed" in outputs["evaluate"]
        assert "promoted" in outputs["promote"]
        assert leftover_processes(str(tmp_path)), "the deployment should be running now"
        # a later build logs degraded feedback: evaluate exits 1 and says why
        assert cli(tmp_path, "subscribe", "-p", "max_rows_per_evaluation", "100").returncode == 0
        assert cli(tmp_path, "feedback", "-p", "feedback_rows", "100",
                   "-p", "feedback_label_noise", "0.6").returncode == 0
        failed = cli(tmp_path, "evaluate")
        assert failed.returncode == 1
        assert "gate failed: quality monitor: accuracy 0." in failed.stderr
        assert "below its lower limit 0.8" in failed.stderr
        refused = cli(tmp_path, "promote")  # the failed gate is recorded for later stages
        assert refused.returncode == 1 and "the quality gate failed" in refused.stderr
    finally:
        done = cli(tmp_path, "cleanup")
    assert done.returncode == 0, done.stderr
    assert leftover_processes(str(tmp_path)) == []
