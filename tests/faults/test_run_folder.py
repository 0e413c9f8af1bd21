"""Run folders under faults (issue 30), one ``mlops-workshop`` process per stage as Jenkins
runs them: one stage at a time per folder; a cleanup that stops what it can find even in a
folder it cannot write or whose records are corrupt; a killed stage marked interrupted; and
local servers that carry no cloud secrets.

The first tests record a small real server the way a stage records its own (tracker and
``state.json``) and run continuous_x's stages on that folder (its cleanup is the standard
one). The last ones run sagemaker_byo's local pipeline: its training job runs long enough
to be killed mid-stage, and its test endpoint is a server with workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_helpers.pipeline import StateStore, run_folder_lock
from mlops_helpers.progress import read_progress
from mlops_helpers.resources import ResourceTracker, process_alive
from mlops_helpers.servers import ManagedServer, start_server
from mlops_helpers.waiting import wait_until
from tests.support import leftover_processes, marked_processes, stop_leftovers

pytestmark = [pytest.mark.faults, pytest.mark.slow]

EXE = str(Path(sys.executable).with_name("mlops-workshop"))
SERVER = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-not-a-real-secret-0000",
    "IBM_API_KEY": "ibm-not-a-real-api-key-0000",
}


def env_for(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLOPS_RUN_ROOT": str(root), "MLOPS_ATTENDEE": "test", **extra}


def cli(root: Path, scenario: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, scenario, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env_for(root),
    )


def one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A continuous_x run folder under a fresh root; nothing marked by it survives."""
    root = tmp_path / "runs"
    run_dir = root / "continuous_x-test"
    run_dir.mkdir(parents=True)
    yield root, run_dir
    assert stop_leftovers(str(root)) == []


def recorded_server(root: Path, run_dir: Path) -> ManagedServer:
    """A real server recorded as a stage records its own (tracker, then state.json)."""
    server = start_server(
        "probe",
        SERVER,
        run_dir=run_dir,
        tracker=ResourceTracker(run_dir),
        health_path="/",
        env={"MLOPS_RUN_ROOT": str(root)},
        cwd=run_dir,
        timeout=60,
        interval=0.05,
    )
    StateStore(run_dir / "state.json").update(probe={"server": server.to_dict()})
    return server


def test_a_second_stage_in_the_same_folder_refuses_in_one_line(
    folder: tuple[Path, Path],
) -> None:
    root, run_dir = folder
    server = recorded_server(root, run_dir)
    with run_folder_lock(run_dir, "continuous_x deploy_staging", 60):
        done = cli(root, "continuous_x", "cleanup", "-p", "stage_lock_timeout", "0.2")
        one_line(done, "continuous_x deploy_staging (pid ", "one stage at a time")
        assert server.alive(), "a refused stage must not touch the folder"
    done = cli(root, "continuous_x", "cleanup")  # the lock went with its holder
    assert done.returncode == 0, done.stderr
    assert not server.alive() and ResourceTracker(run_dir).list() == []


def _read_only_allowed() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"):
        return "a read-only bind mount needs Linux, root and unshare(1)"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=30)
    return None if probe.returncode == 0 else "unshare --mount is not permitted here"


def test_cleanup_stops_what_it_finds_in_a_folder_it_cannot_write(
    folder: tuple[Path, Path],
) -> None:
    why = _read_only_allowed()
    if why:
        pytest.skip(why)
    root, run_dir = folder
    server = recorded_server(root, run_dir)
    # the run folder read-only for the cleanup process alone (root may write anything else)
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, str(run_dir), EXE, "continuous_x", "cleanup"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env_for(root),
    )
    one_line(done, "Read-only file system")
    assert not process_alive(server.pid, server.start_time), "the server outlived cleanup"
    done = cli(root, "continuous_x", "cleanup")  # writable again: the records are updated
    assert done.returncode == 0, done.stderr
    assert ResourceTracker(run_dir).list() == []


def test_a_corrupt_resources_json_is_named_and_the_servers_still_stop(
    folder: tuple[Path, Path],
) -> None:
    root, run_dir = folder
    server = recorded_server(root, run_dir)
    resources = run_dir / "resources.json"
    resources.write_text(resources.read_text()[:40])  # torn mid-write
    done = cli(root, "continuous_x", "cleanup")
    one_line(done, f"{resources} is corrupt", "stopped 1 server(s)")
    assert not process_alive(server.pid, server.start_time)


def test_a_corrupt_state_json_is_named_in_one_line(folder: tuple[Path, Path]) -> None:
    root, run_dir = folder
    state = run_dir / "state.json"
    state.write_text('{"candidate_version": "1", ')
    done = cli(root, "continuous_x", "deploy_staging")
    line = one_line(done, f"{state} is corrupt")
    assert "JSONDecodeError" not in line


# -- sagemaker_byo: a stage killed mid-way, two deploys at once, servers without secrets ----
@pytest.fixture(scope="module")
def byo_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("byo-runs")
    done = cli(root, "sagemaker_byo", "build")
    assert done.returncode == 0, done.stderr
    yield root
    cli(root, "sagemaker_byo", "cleanup")
    assert stop_leftovers(str(root)) == []


def _kill_mid_stage(root: Path, stage: str, signum: int) -> subprocess.CompletedProcess[str]:
    """``stage`` started in its own process and sent ``signum`` while it runs."""
    run_dir = root / "sagemaker_byo-test"
    proc = subprocess.Popen(
        [EXE, "sagemaker_byo", stage],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(root),
    )

    def status() -> str:
        entry = read_progress(run_dir).get(stage, {})
        return str(entry.get("status")) if entry.get("pid") == proc.pid else "not started"

    wait_until(
        status,
        what=f"{stage} to run",
        timeout=300,
        interval=0.02,
        until=lambda seen: seen == "running",
        describe=str,
        fail_if=lambda seen: f"{stage} ended {seen} first" if seen in ("done", "failed") else None,
        progress=False,
    )
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)


def test_a_killed_stage_is_marked_interrupted(byo_root: Path) -> None:
    run_dir = byo_root / "sagemaker_byo-test"
    killed = _kill_mid_stage(byo_root, "train", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert read_progress(run_dir)["train"]["status"] == "interrupted"
    done = cli(byo_root, "sagemaker_byo", "cleanup")  # writes progress.json again
    assert done.returncode == 0, done.stderr
    on_disk = json.loads((run_dir / "progress.json").read_text())
    assert on_disk["stages"]["train"]["status"] == "interrupted", on_disk
    # SIGTERM (Jenkins aborting the build): one line, and the stage records it itself
    stopped = _kill_mid_stage(byo_root, "train", signal.SIGTERM)
    assert stopped.returncode == 130 and stopped.stderr.strip() == "error: interrupted"
    assert read_progress(run_dir)["train"]["status"] == "interrupted"
    assert cli(byo_root, "sagemaker_byo", "cleanup").returncode == 0
    assert leftover_processes(str(byo_root)) == []


def test_two_deploys_at_once_leave_nothing_after_cleanup_and_no_secrets(byo_root: Path) -> None:
    for stage in ("train", "train_status"):
        done = cli(byo_root, "sagemaker_byo", stage)
        assert done.returncode == 0, done.stderr
    deploys = [
        subprocess.Popen(
            [EXE, "sagemaker_byo", "deploy_test"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(byo_root, **SECRETS),
        )
        for _ in range(2)
    ]
    for deploy in deploys:
        deploy.wait(timeout=600)
        assert deploy.returncode == 0, deploy.stderr.read() if deploy.stderr else ""
        if deploy.stderr:
            deploy.stderr.close()
    servers = marked_processes(str(byo_root))
    assert servers, "the test endpoint must be running"
    for proc in servers:
        carried = sorted(set(SECRETS) & set(proc.environ()))
        assert carried == [], f"{proc.pid} {' '.join(proc.cmdline())} carries {carried}"
    done = cli(byo_root, "sagemaker_byo", "cleanup")
    assert done.returncode == 0, done.stderr
    assert leftover_processes(str(byo_root)) == []


def test_a_failed_deploy_keeps_the_test_endpoint_serving(byo_root: Path) -> None:
    """Blue-green: the new model's server starts beside the old one; when it cannot (its
    artifact is corrupt here), the old endpoint keeps serving and the state still names it."""
    run_dir = byo_root / "sagemaker_byo-test"
    for stage in ("train", "train_status", "deploy_test"):
        done = cli(byo_root, "sagemaker_byo", stage)
        assert done.returncode == 0, done.stderr
    state = StateStore(run_dir / "state.json")
    before = state.get("endpoints")["test"]
    old = ManagedServer.from_dict(before["server"])
    for stage in ("train", "train_status"):  # another model: another digest
        done = cli(byo_root, "sagemaker_byo", stage, "-p", "max_depth", "2")
        assert done.returncode == 0, done.stderr
    artifact = run_dir / "artifact-store" / state.get("model_uri").removeprefix("local-s3://")
    artifact.write_bytes(b"not a model archive")
    done = cli(byo_root, "sagemaker_byo", "deploy_test", "-p", "max_depth", "2")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert process_alive(old.pid, old.start_time), "the old endpoint was stopped first"
    assert state.get("endpoints")["test"] == before
    assert cli(byo_root, "sagemaker_byo", "cleanup").returncode == 0
    assert leftover_processes(str(byo_root)) == []
