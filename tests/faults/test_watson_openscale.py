"""watson_openscale under faults (issue 15): gates that cannot be walked around, reruns that do
not double-count, dead dependencies that give one line, and a scoring endpoint that never
answers 5xx. Stages run one per ``mlops-workshop`` process where the bypass was found so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_helpers.config import Settings
from mlops_helpers.errors import ConfigError, GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.servers import ManagedServer, free_port
from mlops_helpers.watson_openscale import payload
from mlops_helpers.watson_openscale.local import store_path
from mlops_helpers.watson_openscale.monitor_store import MonitorStore
from mlops_helpers.watson_openscale.stages import PIPELINE
from tests.faults.fuzz import Case, fuzz_endpoint
from tests.support import leftover_processes

pytestmark = pytest.mark.faults

BEFORE_SCORE = ["setup", "space", "store_model", "deploy", "subscribe"]


def context(root: Path, **params: object) -> StageContext:
    """A fresh context, as a new process would build it (settings read again)."""
    settings = Settings.load(
        "watson_openscale",
        params={"run_root": str(root), "attendee": "faults", **params},
        defaults=PIPELINE.defaults,
        env_file=root / "no.env",
        environ={},
    )
    return PIPELINE.context(settings, log=lambda _: None)


def cli(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mlops-workshop")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IBM_", "MLOPS_IBM_"))}
    return subprocess.run(
        [str(exe), "watson_openscale", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**base, "MLOPS_RUN_ROOT": str(root), "MLOPS_ATTENDEE": "faults", **(env or {})},
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


EMPTY_MONITOR = dict.fromkeys(
    (
        "subscriptions",
        "payload_log",
        "feedback_log",
        "monitor_instances",
        "monitor_runs",
        "metrics",
    ),
    0,
)


@dataclass
class FailedSubscribe:
    error: str  # what the refused subscribe raised
    subscriptions: int  # the monitor's rows after it, and after scoring the deployment
    payload_rows: int


@dataclass
class SharedRun:
    root: Path
    failed_subscribe: FailedSubscribe


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRun]:
    """One local run up to subscribe, shared by the module's tests. Before its subscribe, a
    subscribe with a bad threshold is tried and the deployment scored: what that left is
    kept for the test below. Cleanup must leave the monitor's tables empty."""
    root = tmp_path_factory.mktemp("wos-faults")
    ctx = context(root)
    try:
        PIPELINE.run(ctx, BEFORE_SCORE[:-1])
        with pytest.raises(ConfigError, match="min_accuracy") as refused:
            PIPELINE.run_stage("subscribe", context(root, min_accuracy=1.5))
        deployment = ctx.state.get("deployment")
        fields = ctx.state.get("setup")["meta"]["feature_fields"]
        ctx.backend.score(deployment, payload.from_rows(fields, [[0.0] * 64]))
        store = MonitorStore(store_path(ctx.run_dir))
        failed = FailedSubscribe(
            str(refused.value),
            store.counts()["subscriptions"],
            store.payload_count(deployment["deployment_id"]),
        )
        PIPELINE.run_stage("subscribe", ctx)
        yield SharedRun(root, failed)
    finally:
        PIPELINE.run_stage("cleanup", ctx)
        assert leftover_processes(str(root)) == []
    assert MonitorStore(store_path(ctx.run_dir)).counts() == EMPTY_MONITOR


@pytest.fixture
def subscribed(shared_run: SharedRun) -> Path:
    return shared_run.root


def feedback_rows(root: Path) -> int:
    ctx = context(root)
    return MonitorStore(store_path(ctx.run_dir)).feedback_count(
        ctx.state.get("subscription")["subscription_id"]
    )


@pytest.mark.first_in_group  # before any other test logs feedback on the shared run
def test_feedback_sent_twice_counts_once_and_cannot_reach_the_minimum(subscribed) -> None:
    """30 rows sent twice were 60 rows, and passed min_feedback_data_size 50."""
    for _ in range(2):
        PIPELINE.run_stage("feedback", context(subscribed, feedback_rows=30))
    assert feedback_rows(subscribed) == 30
    with pytest.raises(GateFailed, match=r"only 30 feedback row\(s\).*at least 50"):
        PIPELINE.run_stage("evaluate", context(subscribed))


def test_payload_rows_of_a_rerun_are_not_logged_twice(subscribed) -> None:
    """Other tests in the module may have logged client rows already: the rerun adds none."""
    ctx = context(subscribed)
    store = MonitorStore(store_path(ctx.run_dir))
    deployment = ctx.state.get("deployment")["deployment_id"]
    counts = [store.payload_count(deployment, "client")]
    for _ in range(2):
        result = PIPELINE.run_stage("score", ctx)
        assert result["payload_logged"] == result["requests"]
        counts.append(store.payload_count(deployment, "client"))
    assert 0 <= counts[1] - counts[0] <= result["requests"]
    assert counts[2] == counts[1]


def test_threshold_is_read_when_the_gate_runs_and_promote_obeys_it(subscribed) -> None:
    """`evaluate -p min_accuracy 0.995` passed: the threshold took effect at subscribe only.
    And the gate protected nothing: the model was live before it ran."""
    PIPELINE.run_stage("feedback", context(subscribed))
    strict = cli(subscribed, "evaluate", "-p", "min_accuracy", "0.995")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "below its lower limit 0.995" in one_line(strict)
    refused = cli(subscribed, "promote")  # its own process reads the recorded verdict
    assert refused.returncode == 1
    assert "the quality gate failed for version 1" in one_line(refused)
    assert context(subscribed).state.get("production") is None
    PIPELINE.run_stage("evaluate", context(subscribed))  # the default bar: a passing verdict
    promoted = cli(subscribed, "promote")  # read by yet another process
    assert promoted.returncode == 0, promoted.stderr
    assert context(subscribed).state.get("production")["model_version"] == "1"


def test_promote_refuses_a_version_the_gate_has_not_judged(subscribed) -> None:
    ctx = context(subscribed)
    PIPELINE.run_stage("feedback", ctx)  # enough rows for a verdict, whatever ran before
    PIPELINE.run_stage("evaluate", ctx)
    model = ctx.state.get("model")
    ctx.state.update(model={**model, "version": "2", "digest": "0" * 64})  # a new candidate
    try:
        with pytest.raises(
            GateFailed, match="passed for version 1, but the candidate is now version 2"
        ):
            PIPELINE.run_stage("promote", ctx)
    finally:
        ctx.state.update(model=model)


@pytest.mark.parametrize("value", ["-5", "1.5", "nan", "abc"])
def test_threshold_out_of_range_is_refused(subscribed, value: str) -> None:
    done = cli(subscribed, "evaluate", "-p", "min_accuracy", value)
    assert done.returncode == 1
    assert "min_accuracy" in one_line(done)


def test_scoring_endpoint_answers_malformed_input_with_json_4xx(subscribed) -> None:
    ctx = context(subscribed)
    fields = ctx.state.get("subscription")["feature_fields"]
    example = payload.from_rows(fields, [[1.0] * 64])
    row = [1.0] * 64

    def body(values: list[object]) -> bytes:
        import json

        return json.dumps({"input_data": [{"fields": fields, "values": [values]}]}).encode()

    extra = [
        Case("value 1e308", body=body([1e308, *row[1:]])),
        Case("value -1e300", body=body([-1e300, *row[1:]])),
        Case(
            "value 400-digit int",
            body=body([0, *row[1:]]).replace(b"[0, ", b"[" + b"9" * 400 + b", ", 1),
        ),
        Case("NaN in a row", body=body(row).replace(b"1.0", b"NaN", 1)),
        Case("Infinity in a row", body=body(row).replace(b"1.0", b"Infinity", 1)),
        Case("row is an object", body=body(row).replace(b"[[", b'[{"a": 1}, [', 1)),
        Case(
            "fields nested 10k deep",
            body=b'{"input_data": [{"fields": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]}",
        ),
        Case(
            "two input_data blocks",
            body=b'{"input_data": [{"fields": [], "values": []}, {"fields": [], "values": []}]}',
        ),
        Case("unknown deployment", path_suffix="x"),
        Case(
            "20,000 rows",
            body=body(row)[:-4] + b"".join([b", " + str(row).encode()] * 20_000) + b"]}]}",
        ),
    ]
    url = ctx.state.get("deployment")["scoring_url"]
    report = fuzz_endpoint(url, example, extra=extra)
    assert report.n5xx == 0 and not report.bad, report.bad
    assert report.n4xx >= report.cases - 3  # content-type variants may be answered either way
    print("fuzz watson scoring endpoint:", report.as_dict())


@pytest.mark.last_in_group  # its degraded feedback stays in the shared run
def test_degraded_feedback_in_a_later_build_fails_the_gate_and_promote_obeys(
    subscribed: Path,
) -> None:
    """A later build, each stage in its own process (as Jenkins runs them): degraded feedback
    makes evaluate exit 1 and say why; promote, another process, reads that verdict."""
    assert cli(subscribed, "subscribe", "-p", "max_rows_per_evaluation", "100").returncode == 0
    logged = cli(
        subscribed, "feedback", "-p", "feedback_rows", "100", "-p", "feedback_label_noise", "0.6"
    )
    assert logged.returncode == 0, logged.stderr
    failed = cli(subscribed, "evaluate")
    assert failed.returncode == 1
    assert "gate failed: quality monitor: accuracy 0." in one_line(failed)
    assert "below its lower limit 0.8" in failed.stderr
    refused = cli(subscribed, "promote")
    assert refused.returncode == 1 and "the quality gate failed" in one_line(refused)


def test_a_failed_subscribe_leaves_no_payload_row(shared_run: SharedRun) -> None:
    failed = shared_run.failed_subscribe
    assert "min_accuracy" in failed.error
    assert failed.subscriptions == 0
    assert failed.payload_rows == 0  # scored, but no subscription: nothing logged


@pytest.mark.last_in_group(1)  # it stops the shared run's scoring server
def test_score_and_evaluate_with_the_scoring_server_dead_say_so_in_one_line(
    subscribed: Path,
) -> None:
    """Last of the shared run's tests: it stops the deployment's server."""
    ctx = context(subscribed)
    PIPELINE.run_stage("feedback", ctx)  # enough rows that evaluate goes on to score them
    ManagedServer.from_dict(ctx.state.get("deployment")["server"]).stop()
    for stage in ("score", "evaluate"):
        done = cli(subscribed, stage)
        assert done.returncode == 1
        line = one_line(done)
        assert "does not answer" in line and "run the deploy stage again" in line, line


def test_monitor_db_shrinks_after_its_rows_are_deleted(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "monitor.db")
    subscription, _ = store.upsert_subscription(
        deployment_id="d",
        deployment_name="d",
        model_name="m",
        model_version="1",
        scoring_url="http://127.0.0.1:9",
        label_column="y",
        problem_type="multiclass",
        feature_fields=["x"],
        training_schema={},
    )
    # big requests, few commits: each commit waits for the disk
    request = {"input_data": [{"fields": ["x"], "values": [[0.5]] * 4000}]}
    for i in range(100):
        store.log_payload(
            deployment_id="d",
            model_version="1",
            request={**request, "i": i},
            response={},
            n_rows=4000,
            response_time_ms=1.0,
        )
    store.add_feedback(subscription["id"], [([float(i)], i % 10) for i in range(5000)])

    def size() -> int:
        return sum(p.stat().st_size for p in tmp_path.glob("monitor.db*"))

    full = size()
    assert full > 4_000_000
    store.delete_subscription(subscription["id"])
    assert size() < full / 10, (full, size())


def test_setup_checks_every_ibm_setting_before_training(tmp_path: Path) -> None:
    done = cli(tmp_path, "setup", "--backend", "ibm")
    assert done.returncode == 1
    line = one_line(done)
    for name in ("IBM_API_KEY", "IBM_WML_URL", "IBM_OPENSCALE_URL", "IBM_SERVICE_INSTANCE_ID"):
        assert name in line
    assert not list(tmp_path.rglob("model.joblib")), "setup trained before checking"


def test_an_unreachable_ibm_url_is_one_line(tmp_path: Path) -> None:
    nowhere = f"https://127.0.0.1:{free_port()}"
    env = {
        "IBM_API_KEY": "not-a-real-key-0000",
        "IBM_WML_URL": nowhere,
        "IBM_OPENSCALE_URL": nowhere,
        "IBM_PLATFORM_URL": nowhere,
        "IBM_IAM_URL": nowhere,
        "IBM_SERVICE_INSTANCE_ID": "00000000-0000-4000-8000-000000000000",
    }
    done = cli(tmp_path, "setup", "--backend", "ibm", env=env)
    assert done.returncode == 1
    assert f"cannot reach Watson OpenScale at {nowhere}" in one_line(done)
    # later stages of a run whose service went away (state as earlier stages wrote it:
    # setup's model and held-out rows, the service's ids)
    ctx = context(tmp_path)
    PIPELINE.run_stage("setup", ctx)
    ctx.state.update(
        deployment={
            "deployment_id": "d-1",
            "name": "wos-deploy-faults",
            "space_id": "s-1",
            "model_version": "1",
            "scoring_url": f"{nowhere}/ml/v4/deployments/d-1",
        },
        subscription={
            "subscription_id": "sub-1",
            "deployment_id": "d-1",
            "monitor_instance_id": "m-1",
            "feature_fields": ["x"],
            "label_column": "y",
        },
        model={"name": "m", "version": "1", "digest": "0" * 64, "model_id": "m-1"},
    )
    for stage in ("score", "evaluate"):
        done = cli(tmp_path, stage, "--backend", "ibm", env=env)
        assert done.returncode == 1
        line = one_line(done)
        assert "cannot reach" in line and nowhere in line, line
        assert "not-a-real-key-0000" not in done.stdout + done.stderr
