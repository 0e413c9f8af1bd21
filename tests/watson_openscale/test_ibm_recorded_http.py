"""The ibm backend through the real ibm-watson-openscale client, against recorded HTTP answers.

``responses`` stands in for IBM Cloud: every request the SDK sends is matched against the
answers below (shaped as the OpenScale v2 API documents them) and recorded, so the test
checks the HTTP call sequence itself: IAM token, entitlement check, service provider looked
up by the deployment space (not a hard-coded id) and created only when missing, feedback
records posted to the subscription's feedback data set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses

from mlops_helpers.watson_openscale.feedback import FeedbackRejected
from mlops_helpers.watson_openscale.ibm import IbmBackend
from tests.watson_openscale.conftest import make_context

INSTANCE = "00000000-0000-4000-8000-0000000000a1"
SPACE = "space-0001"
SUBSCRIPTION = "subscription-0001"
STAMP = "2026-11-23T12:00:00.000Z"
FEATURES = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]

Handler = Callable[[Any, re.Match[str]], tuple[Any, ...]]


class RecordedOpenScale:
    """Routes (method, path pattern) to recorded answers; keeps every request in order."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.log: list[tuple[str, str, Any]] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.providers: list[dict[str, Any]] = []
        self.records: list[Any] = []
        token = jwt.encode({"exp": 4102444800, "iat": 1700000000, "sub": "workshop"},
                           "recorded-answers-signing-value-32+", algorithm="HS256")
        mock.add(responses.POST, re.compile(r".*/identity/token"),
                 json={"access_token": token, "refresh_token": "r", "token_type": "Bearer",
                       "expires_in": 3600, "expiration": 4102444800})
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            mock.add_callback(method, re.compile(r"https://wos\.invalid/.*"),
                              callback=self.answer)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(pattern), handler))
            return handler

        return add

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = request.path_url.split("?")[0]
        body = json.loads(request.body) if request.body else None
        self.log.append((request.method, request.path_url, body))
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if method == request.method and match:
                status, payload, *extra = handler(request, match)
                headers = {"Content-Type": "application/json", **(extra[0] if extra else {})}
                return status, headers, json.dumps(payload)
        return 404, {"Content-Type": "application/json"}, json.dumps(
            {"errors": [{"code": "not_found", "message": f"no recorded answer for {path}"}]})

    def calls(self) -> list[str]:
        return [f"{m} {p.split('?')[0].replace(f'/openscale/{INSTANCE}', '')}"
                for m, p, _ in self.log]


def provider(pid: str, space: str) -> dict[str, Any]:
    return {"metadata": {"id": pid, "url": f"/v2/service_providers/{pid}", "created_at": STAMP},
            "entity": {"name": f"provider-{pid}", "service_type": "watson_machine_learning",
                       "deployment_space_id": space, "operational_space_id": "production",
                       "status": {"state": "active"}}}


def data_set(kind: str) -> dict[str, Any]:
    return {"metadata": {"id": f"{kind}-set", "url": f"/v2/data_sets/{kind}-set",
                         "created_at": STAMP},
            "entity": {"data_mart_id": INSTANCE, "name": kind, "type": kind,
                       "target": {"target_type": "subscription", "target_id": SUBSCRIPTION},
                       "data_schema": {"type": "struct", "fields": []},
                       "status": {"state": "active"}}}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedOpenScale]:
    from ibm_watson_openscale.utils import utils

    # the SDK's synchronous mode polls every 5 s; recorded answers are ready at once
    defaults = list(utils.print_synchronous_run.__defaults__ or ())
    defaults[3] = 0.01
    monkeypatch.setattr(utils.print_synchronous_run, "__defaults__", tuple(defaults))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        api = RecordedOpenScale(mock)

        @api.route("GET", r"/v1/entitlements")
        def entitlements(request: Any, match: Any) -> tuple[int, Any]:
            return 200, {"entitlements": {"ai_openscale": [{"id": INSTANCE,
                                                            "plan_name": "standard"}]}}

        @api.route("GET", r".*/v2/monitor_definitions")
        def definitions(request: Any, match: Any) -> tuple[int, Any]:
            return 200, {"monitor_definitions": []}

        @api.route("GET", r".*/v2/service_providers")
        def list_providers(request: Any, match: Any) -> tuple[int, Any]:
            space = request.params.get("deployment_space_id")
            return 200, {"service_providers": [
                p for p in api.providers if p["entity"]["deployment_space_id"] == space]}

        @api.route("POST", r".*/v2/service_providers")
        def add_provider(request: Any, match: Any) -> tuple[int, Any]:
            body = json.loads(request.body)
            created = provider("provider-new", body["deployment_space_id"])
            api.providers.append(created)
            return 201, created

        @api.route("GET", r".*/v2/service_providers/(?P<pid>[^/]+)")
        def get_provider(request: Any, match: Any) -> tuple[int, Any]:
            return 200, next(p for p in api.providers if p["metadata"]["id"] == match["pid"])

        @api.route("GET", r".*/v2/data_sets")
        def list_data_sets(request: Any, match: Any) -> tuple[int, Any]:
            return 200, {"data_sets": [data_set(request.params["type"])]}

        @api.route("POST", r".*/v2/data_sets/(?P<ds>[^/]+)/records")
        def store(request: Any, match: Any) -> tuple[Any, ...]:
            api.records.append((match["ds"], json.loads(request.body)))
            location = f"/v2/data_sets/{match['ds']}/requests/request-1"
            return 202, {"state": "pending"}, {"Location": location}

        @api.route("GET", r".*/v2/data_sets/(?P<ds>[^/]+)/requests/(?P<rid>[^/]+)")
        def request_status(request: Any, match: Any) -> tuple[int, Any]:
            return 200, {"state": "active"}

        yield api


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IbmBackend:
    ctx = make_context(tmp_path, backend="ibm", ibm_api_key="recorded-api-key-value",
                       ibm_wml_url="https://wml.invalid", ibm_openscale_url="https://wos.invalid",
                       ibm_service_instance_id=INSTANCE, poll_interval=0.01)
    # only the watsonx.ai client is unused here; OpenScale's is the real SDK client
    monkeypatch.setattr(IbmBackend, "wml_factory", staticmethod(lambda settings: None))
    return ctx.backend


def test_client_authenticates_and_checks_the_entitlement(recorded, backend) -> None:
    assert backend.wos.service_instance_id == INSTANCE
    assert recorded.calls()[0] == "GET /v1/entitlements"
    token = next(r for r in recorded.mock.calls if "identity/token" in r.request.url)
    assert "recorded-api-key-value" in token.request.body  # sent to IAM, and only there
    assert all("recorded-api-key-value" not in str(body) for _, _, body in recorded.log)


def test_service_provider_is_found_by_the_space(recorded, backend) -> None:
    recorded.providers.append(provider("provider-other", "space-other"))
    recorded.providers.append(provider("provider-0001", SPACE))
    assert backend._service_provider(SPACE) == "provider-0001"
    assert recorded.calls()[-1] == "GET /v2/service_providers"
    assert recorded.log[-1][1].endswith(f"deployment_space_id={SPACE}")
    assert not any(m == "POST" for m, _, _ in recorded.log)


def test_missing_service_provider_is_created_for_the_space(recorded, backend) -> None:
    assert backend._service_provider(SPACE) == "provider-new"
    posted = next(body for m, p, body in recorded.log if m == "POST")
    assert posted["deployment_space_id"] == SPACE
    assert posted["service_type"] == "watson_machine_learning"
    assert posted["operational_space_id"] == "production"
    assert posted["credentials"]["url"] == "https://wml.invalid"


def test_feedback_goes_to_the_subscription_feedback_data_set(recorded, backend) -> None:
    subscription = {"subscription_id": SUBSCRIPTION, "feature_fields": FEATURES,
                    "label_column": "digit"}
    rows = [[0.0] * 64 + [3], [1.0] * 64 + [7]]
    assert backend.log_feedback(subscription, [*FEATURES, "digit"], rows) == 2
    data_set_id, body = recorded.records[-1]
    assert data_set_id == "feedback-set"
    assert body[0]["fields"] == [*FEATURES, "digit"]
    assert [row[-1] for row in body[0]["values"]] == [3, 7]
    listing = next(p for m, p, _ in recorded.log if "/v2/data_sets?" in p)
    assert "type=feedback" in listing and f"target.target_id={SUBSCRIPTION}" in listing


def test_feedback_without_labels_never_reaches_openscale(recorded, backend) -> None:
    subscription = {"subscription_id": SUBSCRIPTION, "feature_fields": FEATURES,
                    "label_column": "digit"}
    before = len(recorded.log)
    with pytest.raises(FeedbackRejected, match="missing label"):
        backend.log_feedback(subscription, [*FEATURES, "digit"], [[0.0] * 64 + [None]])
    assert len(recorded.log) == before
