"""A scenario registered through the entry point, from its own files only, shows up in the
doctor, ``stages``, ``settings``, a stage run, ``run`` (its notebook, with papermill) and the
room page; nothing in ``mlops_helpers`` names it (``tests/toy_scenario/README.md``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers import scenarios
from mlops_helpers.config import Settings
from mlops_helpers.errors import ConfigError
from mlops_helpers.paths import PACKAGE_DIR
from mlops_helpers.progress import record_progress
from mlops_helpers.room.instructor import RoomState

TOY = Path(__file__).parents[1] / "toy_scenario"
CLI = Path(sys.executable).parent / "mlops-workshop"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(PYTHONPATH=str(TOY), MLOPS_RUN_ROOT=str(tmp_path / "runs"), MLOPS_ATTENDEE="toy")
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )


@pytest.fixture
def toy_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The toy distribution on this process's path, as an installed one would be."""
    monkeypatch.syspath_prepend(str(TOY))
    scenarios.reload()
    yield
    monkeypatch.undo()
    scenarios.reload()
    sys.modules.pop("toy_workshop.stages", None)


def test_no_core_file_names_the_toy() -> None:
    for path in PACKAGE_DIR.rglob("*.py"):
        assert not re.search(r"\btoy\b", path.read_text()), path


def test_it_is_found_in_notebook_order_after_the_five(toy_installed: None) -> None:
    names = scenarios.scenario_names()
    assert names[-1] == "toy" and len(names) == 6
    assert scenarios.load_pipeline("toy").stage_names() == ["greet", "check", "cleanup"]


def test_doctor_stages_and_settings_list_it(tmp_path: Path) -> None:
    doctor = cli(tmp_path, "doctor")
    assert any(
        line.split()[:3] == ["scenario", "toy", "ok"] and line.endswith("local: ready")
        for line in doctor.stdout.splitlines()
    ), doctor.stdout
    stages = cli(tmp_path, "toy", "stages")
    assert stages.returncode == 0 and stages.stdout.split() == ["greet", "check", "cleanup"]
    listed = cli(tmp_path, "toy", "settings").stdout
    assert "repeats" in listed and "a whole number >= 1" in listed


def test_its_stages_run_typed_and_its_gate_gates(tmp_path: Path) -> None:
    bad = cli(tmp_path, "toy", "greet", "-p", "repeats", "0")
    assert bad.returncode == 1
    assert "setting 'repeats' from parameter is 0, but it must be a whole number >= 1" in bad.stderr
    assert cli(tmp_path, "toy", "greet", "-p", "repeats", "1").returncode == 0
    gate = cli(tmp_path, "toy", "check")
    assert gate.returncode == 1 and "fewer than 2" in gate.stderr
    assert cli(tmp_path, "toy", "greet").returncode == 0  # the declared default: 3
    checked = cli(tmp_path, "toy", "check").stdout  # the stage's log line, then its result
    assert json.loads(checked[checked.index("{") :]) == {"words": 3}
    assert cli(tmp_path, "toy", "cleanup").returncode == 0
    assert not (tmp_path / "runs" / "toy-toy" / "greeting.txt").exists()


def test_a_bad_setting_is_refused_before_any_gate(toy_installed: None, tmp_path: Path) -> None:
    """`check` never reads `repeats`, and its gate would fail (no greeting yet): the bad value
    is still the error, whatever the stage would have looked at first."""
    pipeline = scenarios.load_pipeline("toy")
    settings = Settings.load(
        "toy",
        params={"run_root": str(tmp_path), "attendee": "toy", "repeats": 0},
        env_file=tmp_path / "no.env",
        environ={},
    )
    ctx = pipeline.context(settings=settings, log=lambda _m: None)
    with pytest.raises(ConfigError, match="setting 'repeats' from parameter is 0"):
        pipeline.run_stage("check", ctx)
    assert "results" not in ctx.state.load()  # nothing was recorded


def test_run_executes_its_notebook(tmp_path: Path) -> None:
    done = cli(tmp_path, "run", "toy", "-p", "repeats", "2", "--output-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    executed = json.loads((tmp_path / "99_toy.ipynb").read_text())
    outputs = [o.get("text", "") for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("words: 2" in "".join(text) for text in outputs), outputs


def test_the_room_page_has_its_column(
    toy_installed: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_progress(tmp_path / "ana" / "runs" / "toy-ana", "greet", "done")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")  # no hub: unknown
    grid = asyncio.run(RoomState(tmp_path, ["instructor"]).grid())
    assert grid["scenarios"]["toy"] == ["greet", "check", "cleanup"]
    assert grid["rows"]["ana"]["toy"]["greet"]["status"] == "done"
    assert grid["rows"]["ana"]["toy"]["check"]["status"] == "not started"
