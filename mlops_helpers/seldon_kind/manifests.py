"""SeldonDeployment manifests: rendered from each model folder's template, then validated.

Standard kinds (the environment's Namespace) are checked by ``kubernetes-validate`` against
the Kubernetes OpenAPI schema; SeldonDeployments (a custom resource it does not know) by our
JSON schema of the fields we use, plus the cross-field rules a schema cannot say.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

import yaml

from mlops_helpers.errors import GateFailed
from mlops_helpers.extras import require
from mlops_helpers.seldon_kind.catalog import PREPACKAGED

SCHEMA_FILE = Path(__file__).resolve().parent / "seldondeployment.schema.json"
SELDON_API = "machinelearning.seldon.io/v1"
KUBERNETES_VERSION = "1.30"  # the version the kind node image runs


def render(template: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Fill the folder's ``seldondeployment.yaml`` (``${name}`` placeholders)."""
    text = Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})
    return dict(yaml.safe_load(text))


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "mlops-workshop"}},
    }


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def _seldon_errors(doc: dict[str, Any]) -> list[str]:
    # imported here: jsonschema's format checkers take about a second to import, a cost every
    # `mlops-workshop seldon_kind STAGE` process paid although only three stages validate
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]
    if errors:
        return errors
    for i, predictor in enumerate(doc["spec"]["predictors"]):
        graph = predictor["graph"]
        containers = {
            c["name"]
            for spec in predictor.get("componentSpecs", [])
            for c in spec["spec"]["containers"]
        }
        implementation = graph.get("implementation")
        if implementation is None and graph["name"] not in containers:
            errors.append(
                f"spec.predictors.{i}.graph: node '{graph['name']}' has no "
                f"implementation and no container of that name in componentSpecs"
            )
        if implementation is not None and implementation not in PREPACKAGED:
            errors.append(
                f"spec.predictors.{i}.graph: implementation {implementation} is not "
                f"a server this workshop knows ({', '.join(sorted(PREPACKAGED))})"
            )
        elif implementation in PREPACKAGED and "modelUri" not in graph:
            errors.append(f"spec.predictors.{i}.graph: {implementation} needs a modelUri")
    return errors


def errors_of(doc: Any) -> list[str]:
    """Everything wrong with one manifest document (empty: valid)."""
    if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
        return ["not a Kubernetes object (no kind/apiVersion)"]
    if doc["kind"] == "SeldonDeployment" or doc["apiVersion"] == SELDON_API:
        return _seldon_errors(doc)
    validator = require("kubernetes_validate", "dev")
    try:
        validator.validate(doc, KUBERNETES_VERSION, strict=True)
    except validator.ValidationError as exc:
        path = ".".join(map(str, exc.path)) or "(top)"
        return [f"{path}: {exc.message}"]
    except validator.SchemaNotFoundError as exc:
        return [f"unknown kind {doc['kind']} {doc['apiVersion']}: {exc}"]
    return []


def validate_folder(folder: Path) -> dict[str, list[str]]:
    """Every ``*.yaml`` in ``folder``: file name -> its errors (only files with errors)."""
    problems: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            problems[path.name] = [f"not valid YAML: {exc}"]
            continue
        errors = [e for doc in docs for e in errors_of(doc)]
        if errors:
            problems[path.name] = errors
    return problems


def refuse_invalid(folder: Path, what: str) -> None:
    """Raise with every problem when any manifest in ``folder`` is invalid."""
    problems = validate_folder(folder)
    if problems:
        lines = [f"  {name}: {error}" for name, errors in problems.items() for error in errors]
        raise GateFailed(f"invalid manifest(s) in {what}; nothing was pushed:\n" + "\n".join(lines))
