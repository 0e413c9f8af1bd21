"""The container contract over real processes and real HTTP: train, then serve.

The programs run as the image runs them (``image_site``: its own packages only). One
SageMaker-style training job (ours plus SageMaker's own hyperparameters, a ``train`` and a
``validation`` channel) is read by the train tests and served for the serve tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlops_helpers.servers import ManagedServer, http_json
from tests.sagemaker_byo.container_runs import (
    PROGRAM,
    Image,
    Job,
    Train,
    image_python,
    iris_rows,
    make_tree,
    serve,
    trainer,
)
from tests.sagemaker_byo.container_runs import sagemaker_job as train_sagemaker_job

MAX_BODY = 4096  # small limit for the server under test, so the 413 case is cheap


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return image_python(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def run_train(image: Image) -> Train:
    return trainer(image)


@pytest.fixture(scope="module")
def sagemaker_job(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Job:
    """One run of ``train``, read by the train tests and served by the serve tests."""
    return train_sagemaker_job(tmp_path_factory.mktemp("job"), image)


@pytest.fixture(scope="module")
def endpoint(
    sagemaker_job: Job, image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedServer]:
    yield from serve(
        "byo-contract",
        sagemaker_job,
        image,
        tmp_path_factory.mktemp("run"),
        env={"BYO_MAX_PAYLOAD_BYTES": str(MAX_BODY)},
    )


def post(
    server: ManagedServer,
    body: bytes,
    content_type: str | None = "text/csv",
    accept: str | None = None,
) -> tuple[int, object]:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    return http_json("POST", f"{server.url}/invocations", raw=body, headers=headers)


# -- train ----------------------------------------------------------------------------
def test_train_writes_the_model_and_its_metadata(sagemaker_job: Job) -> None:
    meta = sagemaker_job.meta
    assert meta["n_features"] == 4 and meta["classes"] == [0, 1, 2]
    assert meta["hyperparameters"]["criterion"] == "entropy"
    assert (sagemaker_job.base / "model" / "model.joblib").is_file()
    assert not (sagemaker_job.base / "output" / "failure").exists()


@pytest.mark.parametrize(
    ("hyperparameters", "reason"),
    [
        ({"max_depth": "0"}, "max_depth=0 must be at least 1"),
        ({"max_depth": "deep"}, "is not an integer"),
        ({"criterion": "best"}, "criterion='best'"),
        ({"learning_rate": "0.1"}, "unknown hyperparameter"),
    ],
)
def test_bad_hyperparameter_fails_with_the_reason(
    run_train: Train, tmp_path: Path, hyperparameters: dict[str, str], reason: str
) -> None:
    base = make_tree(tmp_path, hyperparameters, iris_rows())
    done = run_train(base)
    assert done.returncode != 0
    assert reason in (base / "output" / "failure").read_text()
    assert not (base / "model" / "model.joblib").exists()


def test_sagemaker_own_hyperparameters_are_ignored(sagemaker_job: Job) -> None:
    """What tuning and the SageMaker SDK add (JSON-quoted values too) is not refused."""
    meta = sagemaker_job.meta
    assert meta["hyperparameters"] == {"max_depth": 3, "criterion": "entropy", "random_state": 0}


def test_channels_come_from_inputdataconfig(
    sagemaker_job: Job, run_train: Train, tmp_path: Path
) -> None:
    rows = iris_rows()
    # the shared job has a "train" and a "validation" channel: the second is scored
    meta = sagemaker_job.meta
    assert meta["channels"] == ["train", "validation"] and meta["validation_accuracy"] > 0.8
    assert "validation accuracy:" in sagemaker_job.stdout
    # the only channel, whatever its name, is the training channel
    single = make_tree(tmp_path / "single", {}, rows, channel="iris")
    assert run_train(single).returncode == 0
    # two channels and none of them named for training: the reason names them
    unclear = make_tree(tmp_path / "unclear", {}, rows, channel="a", extra={"b": rows})
    assert run_train(unclear).returncode != 0
    assert "no training channel among ['a', 'b']" in (unclear / "output/failure").read_text()
    wrong = make_tree(tmp_path / "parquet", {}, rows, content_type="application/x-parquet")
    assert run_train(wrong).returncode != 0
    assert "reads text/csv" in (wrong / "output" / "failure").read_text()
    missing = make_tree(tmp_path / "missing", {}, rows)
    (missing / "input" / "config" / "inputdataconfig.json").unlink()
    assert run_train(missing).returncode != 0
    assert "inputdataconfig.json is missing" in (missing / "output/failure").read_text()


def test_missing_or_bad_training_data_fails_with_the_reason(
    run_train: Train, tmp_path: Path
) -> None:
    empty = make_tree(tmp_path / "empty", {}, None)
    assert run_train(empty).returncode != 0
    assert "no files in the training channel" in (empty / "output" / "failure").read_text()
    bad = make_tree(tmp_path / "bad", {}, None)
    (bad / "input" / "data" / "training" / "train.csv").write_text("a,b,c\n1,2,3\n")
    assert run_train(bad).returncode != 0
    assert "not numeric CSV" in (bad / "output" / "failure").read_text()


def test_serve_refuses_to_start_without_a_model(image: Image, tmp_path: Path) -> None:
    python, site_env = image
    done = subprocess.run(
        [*python, str(PROGRAM / "serve"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"BYO_OPT_ML": str(tmp_path), "PATH": "/usr/bin:/bin", **site_env},
    )
    assert done.returncode == 2 and "no model" in done.stderr


# -- serve ----------------------------------------------------------------------------
def test_ping_names_the_model_it_serves(endpoint: ManagedServer, sagemaker_job: Job) -> None:
    status, body = http_json("GET", f"{endpoint.url}/ping")
    digest = sagemaker_job.meta["model_sha256"]
    assert (status, body) == (200, {"status": "ok", "model_digest": digest})
    resp = requests.post(
        f"{endpoint.url}/invocations",
        data=b"5.1,3.5,1.4,0.2",
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert resp.headers["X-Amzn-SageMaker-Custom-Attributes"] == f"model_digest={digest}"


def test_csv_in_csv_out(endpoint: ManagedServer) -> None:
    status, body = post(endpoint, b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    assert status == 200
    assert str(body).split() == ["0", "2"]


def test_json_in_json_out_and_accept_wins(endpoint: ManagedServer) -> None:
    status, body = post(endpoint, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}', "application/json")
    assert (status, body) == (200, {"predictions": [0]})
    status, body = post(endpoint, b"6.7,3.0,5.2,2.3", accept="application/json")
    assert (status, body) == (200, {"predictions": [2]})
    status, body = post(
        endpoint, b"[6.7,3.0,5.2,2.3]", "application/json; charset=utf-8", accept="text/csv"
    )
    assert (status, str(body).strip()) == (200, "2")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "text/csv", 400, "empty"),
        (b"  \n", "text/csv", 400, "empty"),
        (b"1,2,3,4", "text/plain", 415, "not supported"),
        (b"1,2,3,4", None, 415, "not supported"),
        (b"5.1,abc,1.4,0.2", "text/csv", 400, "not all values are numbers"),
        (b"5.1,3.5,1.4", "text/csv", 400, "has 3 values; the model needs 4"),
        (b"5.1,3.5,1.4,0.2\n1,2", "text/csv", 400, "row 2 has 2 values"),
        (b"nan,1,2,3", "text/csv", 400, "not all values are numbers"),
        (b"1_0,1,2,3", "text/csv", 400, "not all values are numbers"),
        (b"1e39,1,2,3", "text/csv", 400, "finite numbers within"),
        (b"[[NaN, 1, 2, 3]]", "application/json", 400, "not a JSON number"),
        (b"[[1e308, 1, 2, 3]]", "application/json", 400, "finite numbers within"),
        (b"[[" + b"9" * 400 + b", 1, 2, 3]]", "application/json", 400, "finite numbers within"),
        (b"[" * 2000 + b"]" * 2000, "application/json", 400, "nested too deeply"),
        (b"\xff\xfe", "text/csv", 400, "UTF-8"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"instances": [["a", 1, 2, 3]]}', "application/json", 400, "must be a number"),
        (b'{"rows": 1}', "application/json", 400, "instances"),
        (b"1," * (MAX_BODY // 2 + 10), "text/csv", 413, "limit"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(
    endpoint: ManagedServer, body: bytes, content_type: str | None, status: int, message: str
) -> None:
    got, answer = post(endpoint, body, content_type)
    assert got == status
    assert isinstance(answer, dict) and message in answer["error"]


def test_wrong_accept_method_and_path(endpoint: ManagedServer) -> None:
    status, answer = post(endpoint, b"5.1,3.5,1.4,0.2", accept="application/xml")
    assert status == 406 and "cannot answer" in answer["error"]  # type: ignore[index]
    assert http_json("GET", f"{endpoint.url}/invocations")[0] == 405
    assert http_json("GET", f"{endpoint.url}/nowhere")[0] == 404


def test_still_serving_after_bad_input(endpoint: ManagedServer) -> None:
    for _ in range(5):
        post(endpoint, b"garbage", "text/csv")
        post(endpoint, b"x" * (MAX_BODY + 1), "text/csv")
    assert endpoint.alive()
    assert post(endpoint, b"5.1,3.5,1.4,0.2")[0] == 200
