"""The IBM Cloud double: IAM, the platform API, WML v4 and Watson OpenScale v2 on one HTTPS port.

One server answers for all of them, because the clients take each base URL as a setting and
the paths do not overlap. State lives in ``WmlState`` and ``OpenScaleState`` (``wml``,
``openscale``), whose methods are the services' state changes; the routes (``wml.routes``,
``openscale.routes``) are one state call each. A test reads the state afterwards, or makes
the service misbehave with the doubles' one fault convention (``tests/doubles/http_base.py``):

    double.faults.inject("POST", r"/ml/v4/deployments", status=503, times=-1)
    double.faults.inject("GET", r"/v2/spaces", status=None, delay=3)
    double.faults.inject("POST", r"/ml/v4/deployments", status=429, retry_after=1, times=2)

Errors are IBM's envelope ``{"errors": [{"code", "message"}], "trace", "status_code"}``
(cloud.ibm.com/apidocs/machine-learning, "Error handling"; the same in
cloud.ibm.com/apidocs/ai-openscale).

Tokens expire: a request whose bearer token is past its ``exp`` claim is refused with 401,
as IBM's services refuse an expired IAM access token (IAM Identity Services API, "Create an
IAM access token for an API key": ``expires_in``/``expiration``, 3600 s on IBM Cloud); the
clients must refresh in time (ibm-cloud-sdk-core 3.25.0 ``token_managers/jwt_token_manager.py``
refreshes at 80 % of the lifetime, ibm-watsonx-ai 1.8.1
``utils/auth/base_auth/refreshable_token_auth.py`` before ``exp``). A throttled call answers
429 with a ``Retry-After`` header in seconds, which IBM's SDK core honours when retries are
on (ibm-cloud-sdk-core 3.25.0 ``base_service.py`` ``enable_retries``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tests.doubles.http_base import ApiError, HttpDouble, Request
from tests.doubles.ibm_cloud import openscale, wml


class IbmCloudDouble(HttpDouble):
    name = "ibm-cloud"

    def __init__(self, folder: Path, runtimes: list[wml.Runtime] | None = None) -> None:
        super().__init__(tls_folder=folder)
        assert self.cert is not None
        self.ca_bundle = self.cert
        self.api_key = f"double-{uuid.uuid4().hex}"
        self.instance_id = str(uuid.uuid4())
        self.wml = wml.WmlState(api_key=self.api_key, base_url=self.url)
        if runtimes is not None:
            self.wml.runtimes = runtimes
        self.openscale = openscale.OpenScaleState(instance_id=self.instance_id, wml=self.wml)
        self.wml.on_scored = self.openscale.payload_logged
        self.refused_expired = 0  # requests refused for an expired token
        wml.routes(self, self.wml)
        openscale.routes(self, self.openscale)

    def authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.wml.tokens:
            raise ApiError(401, "authorization_rejected", "a valid IAM bearer token is required")
        if time.time() > self.wml.tokens[token]:
            self.refused_expired += 1
            raise ApiError(401, "authentication_token_expired", "the IAM access token has expired")

    def error_body(self, request: Request, error: ApiError) -> Any:
        return {
            "errors": [{"code": error.code, "message": error.message}],
            "trace": "ibm-cloud-double",
            "status_code": error.status,
        }

    def settings(self) -> dict[str, Any]:
        crn = "crn:v1:double:public"
        return {
            "ibm_api_key": self.api_key,
            "ibm_wml_url": self.url,
            "ibm_platform_url": self.url,
            "ibm_iam_url": self.url,
            "ibm_openscale_url": self.url,
            "ibm_service_instance_id": self.instance_id,
            "ibm_ca_bundle": str(self.ca_bundle),
            "ibm_cos_crn": f"{crn}:cloud-object-storage:global::{self.instance_id}::",
            "ibm_wml_instance_crn": f"{crn}:pm-20:us-south::{self.instance_id}::",
        }

    def environ(self) -> dict[str, str]:
        """The same settings as the environment variables Jenkins would pass."""
        return {key.upper(): str(value) for key, value in self.settings().items()}

    def counts(self) -> dict[str, int]:
        """What exists now: the end state a rerun must not grow."""
        return {
            "spaces": len(self.wml.spaces),
            "models": len(self.wml.models),
            "deployments": len(self.wml.deployments),
            "service_providers": len(self.openscale.providers),
            "subscriptions": len(self.openscale.subscriptions),
            "monitor_instances": len(self.openscale.monitors),
        }
