"""seldon_kind under faults: model servers on loopback only, malformed requests get a JSON
4xx (and seldon-core's own wrapper does no worse than plain seldon-core), a production change
opened before a unit test broke is never approved, and a re-run goes through the approval.

One full local run (every stage but cleanup, in one run directory) serves this file and
``tests/seldon_kind/test_pipeline_local.py`` (``tests/fixtures/seldon_kind.py``); the gate
tests then change that run directory the way a person or a second CI run would.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from mlops_helpers.errors import GateFailed
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.catalog import DEPLOYMENTS
from mlops_helpers.seldon_kind.gitops import GitOpsRepo
from mlops_helpers.seldon_kind.modelwork import child_env
from mlops_helpers.seldon_kind.serving import PREDICTIONS, microservice_argv, sample_payload
from mlops_helpers.seldon_kind.stages import PIPELINE
from mlops_helpers.servers import ManagedServer, start_server
from tests.faults.fuzz import Case, FuzzReport, fuzz_endpoint
from tests.fixtures.seldon_kind import GROUP, FullRun
from tests.support import not_loopback

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group(GROUP)]

ALL_BUT_CLEANUP = [n for n in PIPELINE.stage_names() if n != "cleanup"]
SERVERS_PER_RUN = 3 * len(DEPLOYMENTS)  # test, staging and production environments
PORTS_PER_SERVER = 2  # REST and metrics (local servers run without gRPC: nothing speaks it)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


#: plain seldon-core: the same scikit-learn artifact behind a class with no checks at all
PLAIN_MODEL = """
import os

import joblib


class PlainModel:
    def __init__(self, model_uri):
        self.model = joblib.load(os.path.join(model_uri, "model.joblib"))

    def predict(self, X, features_names=None):
        return self.model.predict_proba(X)
"""


def _multipart(name: str, value: bytes, filename: str | None = None) -> Case:
    boundary = "fuzz-boundary"
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + value
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Case(
        f"multipart {name}{' file' if filename else ''} {value[:12]!r}",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def seldon_cases(example: dict[str, Any]) -> list[Case]:
    """What Seldon's REST protocol accepts besides a JSON body, malformed."""
    row = example["data"]["ndarray"][0]
    messages = {
        "strData": {"strData": "hello"},
        "binData": {"binData": "aGVsbG8="},
        "binData not base64": {"binData": "***"},
        "jsonData": {"jsonData": {"x": [1, 2]}},
        "tensor of the wrong size": {"data": {"tensor": {"shape": [1, 4], "values": [1, 2, 3]}}},
        "tensor of strings": {"data": {"tensor": {"shape": [1, 1], "values": ["a"]}}},
        "tensor with a negative shape": {"data": {"tensor": {"shape": [-1], "values": [1]}}},
        "tensor with a huge shape": {"data": {"tensor": {"shape": [10**9, 10**9], "values": [1]}}},
        "tftensor garbage": {"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": "x"}}},
        "names not a list": {"data": {"names": 5, "ndarray": [row]}},
        "50 names": {"data": {"names": ["a"] * 50, "ndarray": [row]}},
        "data a list": {"data": [row]},
        "data a string": {"data": "x"},
        "ndarray a dict": {"data": {"ndarray": {"a": 1}}},
        "ndarray ragged": {"data": {"ndarray": [row, row[:1]]}},
        "ndarray 3-d": {"data": {"ndarray": [[row]]}},
        "ndarray of nulls": {"data": {"ndarray": [[None] * len(row)]}},
        "meta a string": {"meta": "x", "data": {"ndarray": [row]}},
        "1000 rows": {"data": {"ndarray": [row] * 1000}},
    }
    return [
        *(
            Case(f"seldon {name}", body=json.dumps(message).encode())
            for name, message in messages.items()
        ),
        Case("form json= not JSON", body=b"json=%7Bnot+json", headers=FORM),
        Case("form json= the example", body=b"json=" + json.dumps(example).encode(), headers=FORM),
        Case("query json= not JSON", body=None, headers={}, path_suffix="?json=%7Bnot"),
        Case("query json= 400 digits", body=None, headers={}, path_suffix="?json=" + "9" * 400),
        Case("unknown path", path_suffix="/more", body=json.dumps(example).encode()),
        _multipart("data", b"{not json"),
        _multipart("binData", b"\x00\xff" * 10, "x.bin"),
        _multipart("strData", b"\xff\xfe not utf-8", "x.txt"),
        _multipart("strData", b"some text"),
    ]


def failures(report: FuzzReport) -> set[str]:
    """The names of the cases answered with a 5xx."""
    return {line.split(": ", 1)[0] for line in report.bad if ": 5" in line}


def staging_urls(ctx: StageContext) -> dict[str, str]:
    return ctx.backend.environment("staging").urls()


def example(ctx: StageContext, deployment: str) -> dict[str, Any]:
    return sample_payload(ctx.state.get("models")[deployment]["meta"])


def test_every_model_server_listens_on_loopback_only(full_run: FullRun) -> None:
    sockets = full_run.sockets
    ports = {port for _pid, _ip, port in sockets}
    assert len(ports) >= SERVERS_PER_RUN * PORTS_PER_SERVER, sockets
    assert not_loopback(sockets) == [], "reachable from the network"
    assert not_loopback(full_run.seen) == [], "bound beyond loopback during the run"


@pytest.mark.parametrize("deployment", [d.name for d in DEPLOYMENTS])
def test_malformed_requests_get_a_json_4xx(full_run: FullRun, deployment: str) -> None:
    ctx = full_run.ctx
    url = staging_urls(ctx)[ctx.settings.name(deployment)] + PREDICTIONS
    report = fuzz_endpoint(url, example(ctx, deployment))
    assert report.n5xx == 0 and not report.bad, report.bad
    assert report.n4xx >= report.cases - 3, report.as_dict()  # 2xx: only valid variants


@pytest.fixture(scope="module")
def plain_seldon(full_run: FullRun, tmp_path_factory: pytest.TempPathFactory) -> ManagedServer:
    """Plain seldon-core serving the sklearn-iris artifact, for comparison; the run's
    tracker stops it with everything else."""
    ctx = full_run.ctx
    folder = tmp_path_factory.mktemp("plain")
    (folder / "PlainModel.py").write_text(PLAIN_MODEL)
    artifact = ctx.state.get("models")["sklearn-iris"]["path"]
    parameters = [{"name": "model_uri", "type": "STRING", "value": artifact}]
    return start_server(
        "plain-seldon",
        microservice_argv(ctx.backend.python, "PlainModel"),
        run_dir=ctx.run_dir,
        tracker=ctx.tracker,
        cwd=folder,
        health_path="/health/ping",
        env=child_env(PREDICTIVE_UNIT_PARAMETERS=json.dumps(parameters), PYTHONPATH=str(folder)),
        timeout=120,
        interval=0.05,
    )


def test_seldon_wrapper_answers_no_more_5xx_than_plain_seldon_core(
    full_run: FullRun, plain_seldon: ManagedServer
) -> None:
    """seldon-core parses the message before our class sees it; where its parser fails
    (a tensor of the wrong size, tftensor, ``meta`` of the wrong type) it answers 500 for
    every model. Ours must never add a 5xx of its own, and never a body that is not JSON."""
    ctx = full_run.ctx
    sample = example(ctx, "sklearn-iris")
    plain = fuzz_endpoint(plain_seldon.url + PREDICTIONS, sample, extra=seldon_cases(sample))
    figures = {"plain seldon-core (sklearn-iris)": plain.as_dict()}
    for dep in DEPLOYMENTS:
        url = staging_urls(ctx)[ctx.settings.name(dep.name)] + PREDICTIONS
        payload = example(ctx, dep.name)
        ours = fuzz_endpoint(url, payload, extra=seldon_cases(payload))
        figures[dep.name] = ours.as_dict()
        assert failures(ours) <= failures(plain), (dep.name, failures(ours) - failures(plain))
        assert len(ours.bad) == ours.n5xx, ours.bad  # nothing bad besides those 5xx
    (ctx.run_dir / "fuzz-figures.json").write_text(json.dumps(figures, indent=2))
    assert plain.n5xx > max(
        f["5xx"] for f in figures.values() if f is not figures["plain seldon-core (sklearn-iris)"]
    )


def _production_versions(ctx: StageContext) -> dict[str, str]:
    record = ctx.backend.environment("production").record()
    return {name: entry["version"] for name, entry in record["deployments"].items()}


def _open_a_change(full_run: FullRun) -> StageContext:
    """A retrained news classifier, up to an open production change."""
    ctx = full_run.context(news_c=0.5)
    PIPELINE.run(
        ctx,
        [
            "train",
            "build",
            "serve_local",
            "integration_test",
            "promote_staging",
            "open_production_change",
        ],
    )
    assert ctx.state.get("change"), "a change must be open"
    return ctx


def test_a_change_opened_before_a_unit_test_broke_is_never_approved(full_run: FullRun) -> None:
    ctx = _open_a_change(full_run)
    change = ctx.state.get("change")
    production = _production_versions(ctx)
    gitops = GitOpsRepo(ctx.run_dir / "gitops")
    head = gitops.head()
    test = full_run.models / "news_classifier" / "tests" / "test_news_classifier.py"
    good = test.read_text()
    test.write_text(good.replace('== ["sport", "tech"]', '== ["tech", "sport"]'))
    with pytest.raises(GateFailed, match="unit tests failed"):
        PIPELINE.run_stage("unit_tests", ctx)
    with pytest.raises(GateFailed, match=r"a later run .* FAILED: it cannot be approved"):
        PIPELINE.run_stage("approve_production", ctx)
    # mended and passing again, the old change is still not what was tested
    test.write_text(good)
    PIPELINE.run_stage("unit_tests", ctx)
    with pytest.raises(GateFailed, match=r"a later run .* passed: it cannot be approved"):
        PIPELINE.run_stage("approve_production", ctx)
    assert gitops.head() == head and _production_versions(ctx) == production
    assert change["branch"] in gitops.branches(), "a refused change stays open for review"


def test_a_test_broken_after_the_change_opened_blocks_its_approval(full_run: FullRun) -> None:
    """Issue 30: the approval digest covers what the unit tests read (tests/, pytest.ini),
    not only what goes into the image; and a YAML null names no approver."""
    ctx = _open_a_change(full_run)
    gitops = GitOpsRepo(ctx.run_dir / "gitops")
    head, production = gitops.head(), _production_versions(ctx)
    folder = full_run.models / "news_classifier"
    for path, broken in (
        (folder / "tests" / "test_news_classifier.py", "\ndef test_broken():\n    assert False\n"),
        (folder / "pytest.ini", "\naddopts = --this-option-does-not-exist\n"),
    ):
        good = path.read_text()
        path.write_text(good + broken)
        try:
            with pytest.raises(GateFailed, match="model folders changed after"):
                PIPELINE.run_stage("approve_production", ctx)
        finally:
            path.write_text(good)
    for nobody in ("null", "None", "~"):
        with pytest.raises(GateFailed, match="needs an approver"):
            PIPELINE.run_stage("approve_production", full_run.context(approver=nobody))
    assert gitops.head() == head and _production_versions(ctx) == production


def test_a_change_branch_pushed_to_after_opening_is_not_approved(full_run: FullRun) -> None:
    ctx = _open_a_change(full_run)
    change = ctx.state.get("change")
    gitops = GitOpsRepo(ctx.run_dir / "gitops")
    head = gitops.head()
    for args in (
        ["fetch", "--quiet", "origin"],
        ["checkout", "--quiet", "-B", change["branch"], f"origin/{change['branch']}"],
    ):
        subprocess.run(["git", *args], cwd=gitops.work, check=True, capture_output=True)
    (gitops.work / "production" / "extra.yaml").write_text("kind: ConfigMap\n")
    assert gitops.commit_and_push("an untested extra", change["branch"])
    gitops.sync_main()
    with pytest.raises(GateFailed, match="moved after it was opened"):
        PIPELINE.run_stage("approve_production", ctx)
    assert gitops.head() == head


def test_a_rerun_in_the_same_run_directory_goes_through_the_approval_again(
    full_run: FullRun,
) -> None:
    ctx = full_run.ctx
    first = full_run.results["approve_production"]
    assert first["approved"]
    PIPELINE.run_stage("cleanup", ctx)  # as the notebook ends
    again = PIPELINE.run(ctx, ALL_BUT_CLEANUP)
    assert again["open_production_change"]["opened"], "the re-run must open a change"
    approval = again["approve_production"]
    assert approval["approved"] and approval["merge_commit"] != first["merge_commit"]
    gitops = GitOpsRepo(ctx.run_dir / "gitops")
    assert gitops.log(limit=1)[0].author == "tech-lead"
    assert ctx.backend.environment("production").record()["commit"] == approval["merge_commit"]
