"""IBM backend: watsonx.ai (Watson Machine Learning) for spaces, models and deployments;
Watson OpenScale for the subscription, payload and feedback logs and the quality monitor.

Driven only by the real ``ibm-watsonx-ai`` and ``ibm-watson-openscale`` clients. Every
stage may run in its own process (as Jenkins runs them), so every client a stage builds is
pointed at the run's space before it is used. OpenScale calls run in the SDK's background
mode and this module waits for them with ``wait_until`` (the SDK's own wait returns None
when it runs out). The runtime is chosen from what the service lists, matching the
scikit-learn the model was trained with. Scoring is payload-logged by the service itself.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tarfile
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from mlops_helpers.config import Settings
from mlops_helpers.errors import BackendUnavailable, ConfigError, StageError, WorkshopError
from mlops_helpers.extras import require
from mlops_helpers.pipeline import StageContext
from mlops_helpers.resources import teardown_handler
from mlops_helpers.waiting import wait_until
from mlops_helpers.watson_openscale import feedback as feedback_rows
from mlops_helpers.watson_openscale import ibm_runtime, quality, retry_after
from mlops_helpers.watson_openscale.base import OpenScaleBackend
from mlops_helpers.watson_openscale.mlflow_repo import digest
from mlops_helpers.watson_openscale.monitor_store import content_key
from mlops_helpers.watson_openscale.registry import REGISTRY

MODULE = "mlops_helpers.watson_openscale.ibm"
QUALITY = "quality"
# OpenScale's quality metric ids <-> ours
METRIC_IDS = {
    "accuracy": "accuracy",
    "weighted_f1_measure": "weighted_f1",
    "weighted_precision": "weighted_precision",
    "weighted_recall": "weighted_recall",
}
OPENSCALE_IDS = {ours: theirs for theirs, ours in METRIC_IDS.items()}
# what every run needs (the environment variable of each is its name in upper case)
REQUIRED = ("ibm_api_key", "ibm_wml_url", "ibm_openscale_url", "ibm_service_instance_id")

T = TypeVar("T")


def as_dict(value: Any) -> Any:
    """SDK answers are DetailedResponse, typed models or dicts; give plain dicts."""
    if hasattr(value, "get_result"):
        value = value.get_result()
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return value


def connection(settings: Settings) -> dict[str, Any]:
    """Every setting the backend needs, checked at once: one message lists what is missing."""
    missing = [f"{key} ({key.upper()})" for key in REQUIRED if not settings.get(key)]
    if missing:
        raise ConfigError(
            "the ibm backend needs " + ", ".join(missing) + ": set them in the "
            "environment or in .env (see README, 'Switching a notebook to its "
            "cloud backend')"
        )
    for key in ("ibm_wml_url", "ibm_openscale_url", "ibm_iam_url", "ibm_platform_url"):
        value = settings.get(key)
        if value is not None and not str(value).startswith("https://"):
            raise ConfigError(f"setting '{key}' must be an https:// URL, got {value!r}")
    bundle = settings.ibm_ca_bundle
    if bundle and not Path(str(bundle)).is_file():
        raise ConfigError(f"setting 'ibm_ca_bundle' names {bundle}, which is not a file")
    return {
        "api_key": settings.ibm_api_key,
        "wml_url": str(settings.ibm_wml_url).rstrip("/"),
        "openscale_url": str(settings.ibm_openscale_url).rstrip("/"),
        "instance_id": str(settings.ibm_service_instance_id),
        "iam_url": str(settings.ibm_iam_url).rstrip("/"),
        "platform_url": settings.ibm_platform_url,
        "ca_bundle": str(bundle) if bundle else None,
    }


def _trust(conf: dict[str, Any]) -> None:
    """A private CA (a private endpoint, or the tests' double): requests-based clients
    (OpenScale, its IAM token manager) read it from REQUESTS_CA_BUNDLE."""
    if conf["ca_bundle"]:
        os.environ["REQUESTS_CA_BUNDLE"] = conf["ca_bundle"]


def _rate_limits(settings: Settings) -> tuple[int, float]:
    """How often a request answered 429 is sent again, and the longest Retry-After waited."""
    return settings.ibm_rate_limit_retries, settings.ibm_retry_after_max


def make_wml(settings: Settings) -> Any:
    ai = require("ibm_watsonx_ai", "ibm")
    conf = connection(settings)
    _trust(conf)
    with _service("watsonx.ai", conf["wml_url"]):
        client = ai.APIClient(
            credentials=ai.Credentials(
                url=conf["wml_url"],
                api_key=conf["api_key"].reveal(),
                platform_url=conf["platform_url"],
                auth_url=f"{conf['iam_url']}/identity/token",
                verify=conf["ca_bundle"],
            )
        )
    retry_after.retry_after_httpx(client.httpx_client, *_rate_limits(settings))
    return client


def make_wos(settings: Settings) -> Any:
    """The OpenScale client; its IAMAuthenticator fetches a new token before the old one
    expires (ibm-cloud-sdk-core refreshes at 80 % of the token's lifetime)."""
    wos = require("ibm_watson_openscale", "ibm")
    from ibm_cloud_sdk_core.authenticators import IAMAuthenticator

    conf = connection(settings)
    _trust(conf)
    with _service("Watson OpenScale", conf["openscale_url"]):
        client = wos.APIClient(
            authenticator=IAMAuthenticator(apikey=conf["api_key"].reveal(), url=conf["iam_url"]),
            service_url=conf["openscale_url"],
            service_instance_id=conf["instance_id"],
        )
    retry_after.retry_after_requests(client, *_rate_limits(settings))
    return client


@contextlib.contextmanager
def _service(what: str, url: str) -> Iterator[None]:
    """Turn a client's failure (unreachable URL, refused key, API error) into one line; keep
    the SDKs' advice warnings ("background mode is on ...") out of the stage's output."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    except WorkshopError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:300] + "..."
        unreachable = any(
            word in f"{type(exc).__name__} {text}"
            for word in (
                "ConnectError",
                "ConnectionError",
                "Max retries",
                "Name or service not known",
                "Connection refused",
                "timed out",
                "Timeout",
                "invalid_url_provided",
            )
        )
        if unreachable:
            raise BackendUnavailable(
                f"cannot reach {what} at {url} ({type(exc).__name__}): check the URL "
                "setting and the network, then run the stage again"
            ) from exc
        raise StageError(f"{what} refused a request ({type(exc).__name__}): {text}") from exc


def _ibm(method: Callable[..., T]) -> Callable[..., T]:
    """Any SDK error inside a backend method surfaces as one readable line."""

    @functools.wraps(method)
    def call(self: IbmBackend, *args: Any, **kwargs: Any) -> T:
        with _service("IBM Cloud", self.conf["wml_url"]):
            return method(self, *args, **kwargs)

    return call


def _by_name(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    found = [
        r
        for r in resources
        if r.get("entity", {}).get("name") == name or r.get("metadata", {}).get("name") == name
    ]
    return sorted(found, key=lambda r: r.get("metadata", {}).get("created_at", ""))


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def choose_runtime(
    specs: list[dict[str, Any]], trained_with: str, wanted: str | None = None
) -> dict[str, str]:
    """The listed runtime whose scikit-learn matches the model's (major.minor), newest name
    first; or ``StageError`` naming both versions."""
    offered: dict[str, str] = {}
    for spec in specs:
        name = spec["metadata"]["name"]
        life = spec["metadata"].get("life_cycle") or {}
        if "retired" in life or "constricted" in life:
            continue  # no new deployments on it
        config = (
            spec.get("entity", {})
            .get("software_specification", {})
            .get("software_configuration", {})
        )
        for package in config.get("included_packages", []):
            if package.get("name") == "scikit-learn":
                offered[name] = str(package["version"])
    matching = sorted(
        (
            n
            for n, v in offered.items()
            if minor(v) == minor(trained_with) and (wanted is None or n == wanted)
        ),
        reverse=True,
    )
    if not matching:
        listed = ", ".join(f"{n} (scikit-learn {v})" for n, v in sorted(offered.items()))
        asked = f" (ibm_software_spec={wanted})" if wanted else ""
        raise StageError(
            f"the model is trained with scikit-learn {trained_with}, but no runtime the "
            f"service lists{asked} loads it: {listed or 'none with scikit-learn'}. Train in "
            "the IBM model runtime (ibm_model_runtime=ibm-runtime, the default; `make "
            "install` creates it) or with a scikit-learn one of them carries, or pick a "
            "runtime with ibm_software_spec"
        )
    name = matching[0]
    spec_id = next(s["metadata"]["asset_id"] for s in specs if s["metadata"]["name"] == name)
    return {
        "name": name,
        "id": spec_id,
        "sklearn": offered[name],
        "model_type": f"scikit-learn_{minor(offered[name])}",
    }


@REGISTRY.register("ibm")
class IbmBackend(OpenScaleBackend):
    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.conf = connection(self.settings)
        self.poll_interval = self.settings.poll_interval  # the spec's ibm default: 5 s
        self._wml: Any = None
        self._wos: Any = None
        self._space: str | None = None

    @property
    def wos(self) -> Any:
        if self._wos is None:
            self._wos = make_wos(self.settings)
        return self._wos

    def wml_in(self, space_id: str) -> Any:
        """The watsonx.ai client, its default space set: every deployments/models call
        needs it, and each stage (each process) builds its own client."""
        if self._wml is None:
            self._wml = make_wml(self.settings)
        if self._space != space_id:
            self._wml.set.default_space(space_id)
            self._space = space_id
        return self._wml

    @property
    def wml(self) -> Any:
        """The client with no space: only for listing and creating spaces."""
        if self._wml is None:
            self._wml = make_wml(self.settings)
        return self._wml

    def _track(self, kind: str, rname: str, /, **params: Any) -> None:
        """Record once: a rerun keeps the first order, so teardown stays newest first
        (subscription before deployment before model before space)."""
        known = self.ctx.tracker.get(kind, rname)
        if known is None or known.params != params:
            self.ctx.tracker.add(kind, rname, module=MODULE, **params)

    def _wait(
        self,
        probe: Callable[[], Any],
        what: str,
        ok: str,
        failed: tuple[str, ...],
        timeout: float,
    ) -> Any:
        """Poll an IBM resource until its ``entity.status.state`` is ``ok``."""

        def state(details: Any) -> str:
            return str(
                ((as_dict(details) or {}).get("entity") or {})
                .get("status", {})
                .get("state", "unknown")
            )

        def failure(details: Any) -> str | None:
            if state(details) not in failed:
                return None
            errors = (as_dict(details)["entity"]["status"].get("failure") or {}).get("errors", [])
            return "; ".join(e.get("message", "") for e in errors) or f"state {state(details)}"

        return as_dict(
            wait_until(
                probe,
                what=what,
                timeout=timeout,
                interval=self.poll_interval,
                until=lambda d: state(d) == ok,
                describe=state,
                fail_if=failure,
            )
        )

    # -- the model, trained for IBM's runtime ---------------------------------------------
    @property
    def _in_runtime_env(self) -> bool:
        """``ibm_model_runtime``: ``ibm-runtime`` (default) trains in .venvs/ibm-runtime,
        whose scikit-learn is the one IBM's current runtime serves; ``project`` trains in
        this environment (an image or a Cloud Pak whose runtime has this scikit-learn)."""
        return bool(self.settings.ibm_model_runtime == "ibm-runtime")

    def model_sklearn(self) -> str:
        if self._in_runtime_env:
            return ibm_runtime.runtime_sklearn()
        return super().model_sklearn()

    def train_model(
        self, module: Any, split: Any, config: dict[str, Any], model_path: Path
    ) -> dict[str, Any]:
        if not self._in_runtime_env:
            return super().train_model(module, split, config, model_path)
        folder = Path(module.__file__).parent
        return ibm_runtime.train_for_runtime(folder, model_path)

    # -- before any work ------------------------------------------------------------------
    @_ibm
    def preflight(self, trained_with: str) -> dict[str, Any]:
        """Settings are complete (checked when the backend was made), the model's own
        environment exists, the API key gets a token from IAM, and both services answer.
        (The runtime list needs a space; the model's runtime is checked before the model is
        stored.)"""
        from mlops_helpers.watson_openscale.registry import space_name

        if self._in_runtime_env:
            ibm_runtime.ensure_ibm_runtime()  # missing: says to run `make install`
        _ = self.wos
        name = space_name(self.settings)
        exists = bool(_by_name(self.wml.spaces.get_details(get_all=True)["resources"], name))
        if not exists:
            self._space_settings(name)
        return {"ibm_services": "reachable", "space_exists": exists}

    def _space_settings(self, name: str) -> tuple[str, str | None]:
        """What creating a space needs on IBM Cloud: a Cloud Object Storage instance."""
        cos = self.settings.ibm_cos_crn
        if not cos:
            raise ConfigError(
                f"space {name} does not exist, and creating it needs IBM_COS_CRN (the CRN of "
                "a Cloud Object Storage instance) and IBM_WML_INSTANCE_CRN (your watsonx.ai "
                "Runtime instance); set them, or IBM_SPACE_NAME to an existing space"
            )
        compute = self.settings.ibm_wml_instance_crn
        return str(cos), str(compute) if compute else None

    def runtime(self, trained_with: str) -> dict[str, str]:
        specs = self.wml.software_specifications.get_details()["resources"]
        wanted = self.settings.ibm_software_spec
        return choose_runtime(specs, trained_with, str(wanted) if wanted else None)

    # -- spaces -----------------------------------------------------------------------------
    @_ibm
    def ensure_space(self, name: str) -> dict[str, Any]:
        spaces = _by_name(self.wml.spaces.get_details(get_all=True)["resources"], name)
        removed = []
        for extra in spaces[1:]:  # duplicates of the same name: keep the oldest
            self.wml.spaces.delete(extra["metadata"]["id"])
            removed.append(extra["metadata"]["id"])
        created = not spaces
        if created:
            cos, compute = self._space_settings(name)
            names = self.wml.spaces.ConfigurationMetaNames
            meta: dict[str, Any] = {names.NAME: name, names.STORAGE: {"resource_crn": cos}}
            if compute:
                meta[names.COMPUTE] = {
                    "name": self.settings.ibm_wml_instance_name,
                    "crn": compute,
                }
            with contextlib.redirect_stdout(io.StringIO()):  # the SDK prints advice here
                details = self.wml.spaces.store(meta_props=meta, background_mode=True)
            space_id = details["metadata"]["id"]
            self._track("ibm_space", name, space_id=space_id)
            self._wait(
                lambda: self.wml.spaces.get_details(space_id),
                f"space {name}",
                "active",
                ("failed",),
                self.settings.space_timeout,
            )
        else:
            space_id = spaces[0]["metadata"]["id"]
        return {
            "space_id": space_id,
            "name": name,
            "created": created,
            "removed_duplicates": removed,
        }

    # -- models -----------------------------------------------------------------------------
    @_ibm
    def store_model(
        self, space: dict[str, Any], name: str, model_dir: Path, meta: dict[str, Any]
    ) -> dict[str, Any]:
        wml = self.wml_in(space["space_id"])
        content = digest(model_dir)
        names = wml.repository.ModelMetaNames
        existing = _by_name(wml.repository.get_model_details(get_all=True)["resources"], name)
        if existing and existing[0]["metadata"].get("description") == f"digest {content}":
            model_id, action = existing[0]["metadata"]["id"], "unchanged"
            revisions = wml.repository.list_models_revisions(model_id)
            revs = [int(r) for r in revisions["REV"]] if len(revisions) else []
            details = (
                {
                    "metadata": {"id": model_id, "rev": str(max(revs))},
                    "entity": existing[0]["entity"],
                }
                if revs
                else wml.repository.create_model_revision(model_id)
            )
        else:
            runtime = self.runtime(meta["sklearn_version"])  # refuses before creating
            archive = _archive(model_dir)
            props = {
                names.NAME: name,
                names.DESCRIPTION: f"digest {content}",
                names.LABEL_FIELD: meta["label_column"],
                names.TYPE: runtime["model_type"],
                names.SOFTWARE_SPEC_ID: runtime["id"],
            }
            if not existing:
                # recorded first: a call that fails half way still leaves it to cleanup
                self._track("ibm_model", name, name=name, space_id=space["space_id"])
                stored = wml.repository.store_model(model=str(archive), meta_props=props)
                model_id, action = stored["metadata"]["id"], "created"
            else:  # new content: a new revision of the one model, never a second model
                model_id, action = existing[0]["metadata"]["id"], "updated"
                wml.repository.update_model(
                    model_id, {names.DESCRIPTION: f"digest {content}"}, update_model=str(archive)
                )
            # a revision freezes this content: deployments name it (asset id + rev)
            details = wml.repository.create_model_revision(model_id)
        model_id = details["metadata"]["id"]
        self._track("ibm_model", name, name=name, space_id=space["space_id"])
        return {
            "model_id": model_id,
            "name": name,
            "version": str(details["metadata"].get("rev", "1")),
            "action": action,
            "digest": content,
            "runtime": details.get("entity", {}).get("software_spec", {}).get("name"),
        }

    # -- deployments --------------------------------------------------------------------------
    @_ibm
    def deploy(self, space: dict[str, Any], model: dict[str, Any], name: str) -> dict[str, Any]:
        deployments = self.wml_in(space["space_id"]).deployments
        names = deployments.ConfigurationMetaNames
        found = _by_name(deployments.get_details(get_all=True)["resources"], name)
        asset = {"id": model["model_id"], "rev": model["version"]}
        hardware = str(self.settings.ibm_hardware_spec)
        self._track("ibm_deployment", name, name=name, space_id=space["space_id"])
        if not found:
            self.ctx.say(
                f"[ibm] will create (billed while it exists): online deployment {name}"
                f" of model {model['name']} rev {model['version']} on runtime "
                f"{model.get('runtime') or 'of the model'}, hardware spec {hardware},"
                f" in space {space['name']} of WML instance "
                f"{self.settings.ibm_wml_instance_crn or 'bound to the space'}"
            )
            details = deployments.create(
                model["model_id"],
                meta_props={
                    names.NAME: name,
                    names.ONLINE: {},
                    names.ASSET: asset,
                    names.HARDWARE_SPEC: {"name": hardware},
                },
                background_mode=True,
            )
            action = "created"
        elif found[0]["entity"].get("asset") == asset:
            details, action = found[0], "unchanged"
        else:
            details = deployments.update(
                found[0]["metadata"]["id"], changes={names.ASSET: asset}, background_mode=True
            )
            action = "updated"
        deployment_id = details["metadata"]["id"]
        ready = self._wait(
            lambda: deployments.get_details(deployment_id),
            f"deployment {name}",
            "ready",
            ("failed",),
            self.settings.deploy_timeout,
        )
        if action == "updated":
            _check_update(ready, name, asset)
        return {
            "deployment_id": deployment_id,
            "name": name,
            "model_name": model["name"],
            "model_id": model["model_id"],
            "model_version": model["version"],
            "space_id": space["space_id"],
            "space_name": space["name"],
            "scoring_url": deployments.get_scoring_href(ready),
            "action": action,
        }

    # -- subscription and monitor -------------------------------------------------------------
    def _service_provider(self, space_id: str) -> str:
        """The provider bound to this space, found by the space, created only when missing."""
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import WMLCredentialsCloud
        from ibm_watson_openscale.supporting_classes.enums import ServiceTypes

        found = as_dict(self.wos.service_providers.list(deployment_space_id=space_id))[
            "service_providers"
        ]
        if found:
            return str(found[0]["metadata"]["id"])
        name = self.settings.name("wos-provider")
        self._track("ibm_service_provider", name, name=name, space_id=space_id)
        added = as_dict(
            self.wos.service_providers.add(
                name=name,
                service_type=ServiceTypes.WATSON_MACHINE_LEARNING,
                deployment_space_id=space_id,
                operational_space_id="production",
                credentials=WMLCredentialsCloud(
                    apikey=self.conf["api_key"].reveal(), url=self.conf["wml_url"], instance_id=None
                ),
                background_mode=True,
            )
        )
        provider_id = str(added["metadata"]["id"])
        self._wait(
            lambda: self.wos.service_providers.get(provider_id),
            f"service provider {name}",
            "active",
            ("error", "failed"),
            self.settings.subscription_timeout,
        )
        return provider_id

    @_ibm
    def subscribe(
        self,
        deployment: dict[str, Any],
        model: dict[str, Any],
        schema: dict[str, Any],
        parameters: dict[str, Any],
        thresholds: list[dict[str, Any]],
    ) -> dict[str, Any]:
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import (
            Asset,
            AssetDeploymentRequest,
            AssetPropertiesRequest,
            PatchDocument,
            ScoringEndpointRequest,
            SparkStruct,
            Target,
        )
        from ibm_watson_openscale.supporting_classes.enums import (
            AssetTypes,
            DeploymentTypes,
            InputDataType,
            ProblemType,
            TargetTypes,
        )

        data_mart_id = self.conf["instance_id"]  # on IBM Cloud the data mart id is the same
        provider_id = self._service_provider(deployment["space_id"])
        found = as_dict(
            self.wos.subscriptions.list(
                data_mart_id=data_mart_id, deployment_deployment_id=deployment["deployment_id"]
            )
        )["subscriptions"]
        self._track(
            "ibm_subscription", deployment["name"], deployment_id=deployment["deployment_id"]
        )
        if found:
            subscription_id, action = found[0]["metadata"]["id"], "updated"
        else:
            self.ctx.say(
                f"[ibm] will create (OpenScale bills each monitored deployment): "
                f"subscription of {deployment['name']} with a quality monitor, in "
                f"OpenScale instance {data_mart_id}"
            )
            added = as_dict(
                self.wos.subscriptions.add(
                    data_mart_id=data_mart_id,
                    service_provider_id=provider_id,
                    asset=Asset(
                        asset_id=model["model_id"],
                        name=model["name"],
                        url=deployment["scoring_url"],
                        asset_type=AssetTypes.MODEL,
                        input_data_type=InputDataType.STRUCTURED,
                        problem_type=ProblemType.MULTICLASS_CLASSIFICATION,
                    ),
                    deployment=AssetDeploymentRequest(
                        deployment_id=deployment["deployment_id"],
                        name=deployment["name"],
                        deployment_type=DeploymentTypes.ONLINE,
                        scoring_endpoint=ScoringEndpointRequest(url=deployment["scoring_url"]),
                    ),
                    asset_properties=AssetPropertiesRequest(
                        label_column=schema["label_column"],
                        feature_fields=schema["feature_fields"],
                        categorical_fields=[],
                        prediction_field="prediction",
                        probability_fields=["probability"],
                        training_data_schema=SparkStruct.from_dict(
                            {
                                "type": "struct",
                                "fields": [
                                    {
                                        "name": f["name"],
                                        "type": f["type"],
                                        "nullable": False,
                                        "metadata": {},
                                    }
                                    for f in schema["fields"]
                                ],
                            }
                        ),
                    ),
                    background_mode=True,
                )
            )
            subscription_id, action = added["metadata"]["id"], "created"
        self._wait(
            lambda: self.wos.subscriptions.get(subscription_id),
            f"subscription of {deployment['name']}",
            "active",
            ("error", "failed"),
            self.settings.subscription_timeout,
        )
        theirs = [
            {**t, "metric_id": OPENSCALE_IDS.get(t["metric_id"], t["metric_id"])}
            for t in thresholds
        ]
        monitors = as_dict(
            self.wos.monitor_instances.list(
                data_mart_id=data_mart_id,
                monitor_definition_id=QUALITY,
                target_target_id=subscription_id,
            )
        )["monitor_instances"]
        if monitors:
            monitor_id, monitor_action = monitors[0]["metadata"]["id"], "updated"
            self.wos.monitor_instances.update(
                monitor_id,
                patch_document=[
                    PatchDocument(op="replace", path="/parameters", value=parameters),
                    PatchDocument(op="replace", path="/thresholds", value=theirs),
                ],
            )
        else:
            created = as_dict(
                self.wos.monitor_instances.create(
                    data_mart_id=data_mart_id,
                    monitor_definition_id=QUALITY,
                    target=Target(target_type=TargetTypes.SUBSCRIPTION, target_id=subscription_id),
                    parameters=parameters,
                    thresholds=theirs,
                    background_mode=True,
                )
            )
            monitor_id, monitor_action = created["metadata"]["id"], "created"
        return {
            "subscription_id": subscription_id,
            "deployment_id": deployment["deployment_id"],
            "data_mart_id": data_mart_id,
            "service_provider_id": provider_id,
            "label_column": schema["label_column"],
            "feature_fields": schema["feature_fields"],
            "problem_type": schema["problem_type"],
            "monitor_instance_id": monitor_id,
            "parameters": parameters,
            "thresholds": thresholds,
            "action": action,
            "monitor_action": monitor_action,
        }

    # -- scoring and logs ---------------------------------------------------------------------
    def _data_set(self, subscription: dict[str, Any], kind: str) -> str:
        from ibm_watson_openscale.supporting_classes.enums import TargetTypes

        found = as_dict(
            self.wos.data_sets.list(
                type=kind,
                target_target_id=subscription["subscription_id"],
                target_target_type=TargetTypes.SUBSCRIPTION,
            )
        )["data_sets"]
        if not found:
            raise StageError(
                f"subscription {subscription['subscription_id']} has no {kind} data set yet"
            )
        return str(found[0]["metadata"]["id"])

    @_ibm
    def score(self, deployment: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """One scoring request; WML itself writes it to the subscription's payload log."""
        wml = self.wml_in(deployment["space_id"])
        answer = dict(wml.deployments.score(deployment["deployment_id"], body))
        if "predictions" not in answer:
            raise StageError(f"deployment {deployment['name']} answered {answer}")
        return answer

    @_ibm
    def payload_count(self, subscription: dict[str, Any]) -> int:
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes

        ds = self._data_set(subscription, DataSetTypes.PAYLOAD_LOGGING)
        return int(as_dict(self.wos.data_sets.get_records_count(data_set_id=ds)) or 0)

    def _rows(self, data_set_id: str) -> list[dict[str, Any]]:
        """Every row of a data set as ``{column: value}``, page by page. With
        ``format="dict"`` each record is one table row whose columns are in
        ``entity.values`` (ibm-watson-openscale's own ``get_list_of_records`` reads them so):
        a payload row has the request's feature columns beside ``prediction``,
        ``probability`` and ``scoring_id``; a feedback row the features and the label."""
        found: list[dict[str, Any]] = []
        offset, page = 0, 1000
        while True:
            got = as_dict(
                self.wos.data_sets.get_list_of_records(
                    data_set_id=data_set_id, limit=page, offset=offset, format="dict"
                )
            )
            records = got.get("records", []) if isinstance(got, dict) else []
            found += [
                values
                for r in records
                if isinstance(values := (r.get("entity") or {}).get("values"), dict)
            ]
            if len(records) < page:
                return found
            offset += page

    @staticmethod
    def _row_key(row: dict[str, Any], columns: list[str]) -> str | None:
        """The content key of a row's named columns (None: a column is missing)."""
        try:
            return content_key([float(row[c]) for c in columns])
        except (KeyError, TypeError, ValueError):
            return None

    def _stored_feedback_keys(self, subscription: dict[str, Any], data_set_id: str) -> set[str]:
        columns = [*subscription["feature_fields"], subscription["label_column"]]
        return {key for row in self._rows(data_set_id) if (key := self._row_key(row, columns))}

    @_ibm
    def payload_logged(self, subscription: dict[str, Any], bodies: list[dict[str, Any]]) -> int:
        """How many of these requests WML's payload logging has written: a request is
        logged when every one of its rows is in the payload table (matched by content)."""
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes

        features = subscription["feature_fields"]
        ds = self._data_set(subscription, DataSetTypes.PAYLOAD_LOGGING)
        logged = {key for row in self._rows(ds) if (key := self._row_key(row, features))}
        count = 0
        for body in bodies:
            block = body["input_data"][0]
            at = {name: i for i, name in enumerate(block["fields"])}
            keys = {content_key([float(row[at[f]]) for f in features]) for row in block["values"]}
            count += keys <= logged
        return count

    @_ibm
    def promote(self, model: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
        """Mark the deployment as production for this model revision (WML deployment tags);
        the stage has checked the gate passed for exactly this revision."""
        deployments = self.wml_in(deployment["space_id"]).deployments
        names = deployments.ConfigurationMetaNames
        tags = ["production", f"rev-{model['version']}", f"digest-{model['digest'][:12]}"]
        before = deployments.get_details(deployment["deployment_id"])
        if sorted(before["entity"].get("tags") or []) == sorted(tags):
            return {
                "deployment_id": deployment["deployment_id"],
                "tags": tags,
                "action": "unchanged",
            }
        deployments.update(
            deployment["deployment_id"], changes={names.TAGS: tags}, background_mode=True
        )
        return {"deployment_id": deployment["deployment_id"], "tags": tags, "action": "promoted"}

    @_ibm
    def log_feedback(
        self, subscription: dict[str, Any], fields: list[str], rows: list[list[Any]]
    ) -> int:
        """Store labelled rows not stored before (keyed by content): a rerun adds nothing."""
        from ibm_watson_openscale.supporting_classes.enums import DataSetTypes

        checked = feedback_rows.check(
            fields, rows, subscription["feature_fields"], subscription["label_column"]
        )
        data_set_id = self._data_set(subscription, DataSetTypes.FEEDBACK)
        stored = self._stored_feedback_keys(subscription, data_set_id)
        values, seen = [], set(stored)
        for x, y in checked:
            key = content_key([*x, float(y)])
            if key not in seen:
                seen.add(key)
                values.append([*x, y])
        if values:
            answer = self.wos.data_sets.store_records(
                data_set_id=data_set_id,
                request_body=[
                    {
                        "fields": [*subscription["feature_fields"], subscription["label_column"]],
                        "values": values,
                    }
                ],
                background_mode=True,
            )
            self._wait_stored(data_set_id, answer, f"{len(values)} feedback rows")
        return len(values)

    def _wait_stored(self, data_set_id: str, answer: Any, what: str) -> None:
        """OpenScale stores records asynchronously (202 and the ``Location`` of a request):
        the rows are there only when that request is ``active``. A monitor run started
        before would not see them."""
        location = str((answer.get_headers() or {}).get("Location", ""))
        request_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not request_id:
            raise StageError(f"OpenScale accepted {what} but named no request to follow")

        def state(status: Any) -> str:
            return str((as_dict(status) or {}).get("state", "unknown"))

        def failure(status: Any) -> str | None:
            if state(status) not in ("error", "failed"):
                return None
            return f"OpenScale did not store {what}: {as_dict(status).get('failure') or 'error'}"

        wait_until(
            lambda: self.wos.data_sets.get_update_status(
                data_set_id=data_set_id, request_id=request_id
            ),
            what=f"{what} stored in data set {data_set_id}",
            timeout=self.settings.feedback_timeout,
            interval=self.poll_interval,
            until=lambda s: state(s) == "active",
            describe=state,
            fail_if=failure,
        )

    @_ibm
    def run_quality_monitor(
        self, subscription: dict[str, Any], thresholds: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import PatchDocument

        monitor_id = subscription["monitor_instance_id"]
        theirs = [
            {**t, "metric_id": OPENSCALE_IDS.get(t["metric_id"], t["metric_id"])}
            for t in thresholds
        ]  # the thresholds as they are when the gate runs
        self.wos.monitor_instances.update(
            monitor_id,
            patch_document=[PatchDocument(op="replace", path="/thresholds", value=theirs)],
        )
        start = datetime.now(UTC) - timedelta(minutes=1)
        started = as_dict(
            self.wos.monitor_instances.run(monitor_instance_id=monitor_id, background_mode=True)
        )
        run_id = started["metadata"]["id"]
        probe = functools.partial(
            self.wos.monitor_instances.get_run_details,
            monitor_instance_id=monitor_id,
            monitoring_run_id=run_id,
        )
        run = as_dict(
            wait_until(
                probe,
                what=f"quality monitor run {run_id}",
                timeout=self.settings.monitor_timeout,
                interval=self.poll_interval,
                until=lambda d: (
                    as_dict(d)["entity"]["status"]["state"] in ("finished", "error", "failed")
                ),
                describe=lambda d: as_dict(d)["entity"]["status"]["state"],
            )
        )
        status = run["entity"]["status"]
        if status["state"] != "finished":
            failure = status.get("failure") or {}
            message = "; ".join(e.get("message", "") for e in failure.get("errors", [])) or (
                f"monitor run ended in state {status['state']}"
            )
            short = "feedback" in message.lower() and "min" in message.lower()
            return {
                "run_id": run_id,
                "status": "insufficient_feedback" if short else "error",
                "message": message,
                "n_rows": 0,
                "metrics": [],
            }
        measured = as_dict(
            self.wos.monitor_instances.list_measurements(
                monitor_instance_id=monitor_id,
                start=start,
                end=datetime.now(UTC) + timedelta(minutes=1),
                run_id=run_id,
            )
        )["measurements"]
        values: dict[str, float] = {}
        for value in measured[0]["entity"]["values"] if measured else []:
            for metric in value["metrics"]:
                if metric["id"] in METRIC_IDS:
                    values[METRIC_IDS[metric["id"]]] = float(metric["value"])
        if not values:
            return {
                "run_id": run_id,
                "status": "error",
                "n_rows": 0,
                "metrics": [],
                "message": "the monitor run finished without quality metrics",
            }
        metrics = quality.judge(values, thresholds)
        failed = quality.failures(metrics)
        return {
            "run_id": run_id,
            "status": "finished",
            "message": "; ".join(failed) or "every metric within its threshold",
            "n_rows": int(run["entity"].get("parameters", {}).get("records", 0) or 0),
            "metrics": metrics,
        }


def _check_update(details: dict[str, Any], name: str, asset: dict[str, Any]) -> None:
    """An asset update that WML could not load leaves the deployment ``ready`` on the
    previous revision, the reason in ``status.failure`` (WML v4: "deployment will be
    reverted back to the previous id/rev"): that is a failed update, not a done one."""
    entity = details.get("entity", {})
    serving = entity.get("asset") or {}
    errors = (entity.get("status", {}).get("failure") or {}).get("errors", [])
    if serving != asset or errors:
        reason = "; ".join(e.get("message", "") for e in errors) or "no reason given"
        raise StageError(
            f"the update of deployment {name} to revision {asset.get('rev')} failed "
            f"({reason}); it still serves revision {serving.get('rev')}"
        )


def _archive(model_dir: Path) -> Path:
    """The model file as WML takes it: a ``.tar.gz`` holding the pickled estimator."""
    archive = model_dir.parent / "wml-model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model_dir / "model.joblib", arcname="model.joblib")
    return archive


# -- teardown (a later `cleanup` process builds its clients from the same settings) -----------
def _settings() -> Settings:
    return Settings.load("watson_openscale")


def _gone(exc: Exception) -> bool:
    """Already deleted (by hand, or by a teardown that failed half way): nothing to do."""
    text = str(exc)
    return "404" in text or "not_found" in text or "does not exist" in text


def _quietly_gone(action: Callable[[], Any], what: str, url: str) -> None:
    try:
        with _service(what, url):
            action()
    except StageError as exc:
        if not _gone(exc):
            raise


@teardown_handler("ibm_subscription")
def _teardown_subscription(params: dict[str, Any]) -> None:
    """Every subscription of the deployment (found by it: an add that failed half way
    may have created one whose id nobody saw)."""
    settings = _settings()
    conf = connection(settings)
    wos = make_wos(settings)
    with _service("Watson OpenScale", conf["openscale_url"]):
        found = as_dict(
            wos.subscriptions.list(
                data_mart_id=conf["instance_id"], deployment_deployment_id=params["deployment_id"]
            )
        )["subscriptions"]
    for subscription in found:
        _quietly_gone(
            lambda s=subscription: wos.subscriptions.delete(
                s["metadata"]["id"], background_mode=True
            ),
            "Watson OpenScale",
            conf["openscale_url"],
        )


@teardown_handler("ibm_service_provider")
def _teardown_provider(params: dict[str, Any]) -> None:
    settings = _settings()
    conf = connection(settings)
    wos = make_wos(settings)
    with _service("Watson OpenScale", conf["openscale_url"]):
        found = as_dict(wos.service_providers.list(deployment_space_id=params["space_id"]))[
            "service_providers"
        ]
    for provider in _by_name(found, params["name"]):
        _quietly_gone(
            lambda p=provider: wos.service_providers.delete(
                p["metadata"]["id"], background_mode=True
            ),
            "Watson OpenScale",
            conf["openscale_url"],
        )


def _in_space(params: dict[str, Any]) -> tuple[Any, str]:
    settings = _settings()
    wml = make_wml(settings)
    url = connection(settings)["wml_url"]
    _quietly_gone(lambda: wml.set.default_space(params["space_id"]), "watsonx.ai", url)
    return wml, url


@teardown_handler("ibm_deployment")
def _teardown_deployment(params: dict[str, Any]) -> None:
    """Every deployment of this name in the space (found by name, as it was created)."""
    wml, url = _in_space(params)
    if wml.default_space_id != params["space_id"]:
        return  # the space is gone, and its deployments with it
    with _service("watsonx.ai", url):
        found = _by_name(wml.deployments.get_details(get_all=True)["resources"], params["name"])
    for deployment in found:
        _quietly_gone(
            lambda d=deployment: wml.deployments.delete(d["metadata"]["id"]), "watsonx.ai", url
        )


@teardown_handler("ibm_model")
def _teardown_model(params: dict[str, Any]) -> None:
    wml, url = _in_space(params)
    if wml.default_space_id != params["space_id"]:
        return
    with _service("watsonx.ai", url):
        found = _by_name(
            wml.repository.get_model_details(get_all=True)["resources"], params["name"]
        )
    for model in found:
        _quietly_gone(lambda m=model: wml.repository.delete(m["metadata"]["id"]), "watsonx.ai", url)


@teardown_handler("ibm_space")
def _teardown_space(params: dict[str, Any]) -> None:
    settings = _settings()
    wml = make_wml(settings)
    _quietly_gone(
        lambda: wml.spaces.delete(params["space_id"]), "watsonx.ai", connection(settings)["wml_url"]
    )
