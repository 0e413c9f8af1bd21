"""The room's Kubernetes path, checked the way Helm and the API server would check it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlops_helpers.paths import project_root

ROOT = project_root()
ROOM = ROOT / "deploy" / "room"
Z2JH = ROOT.parent / "shared" / "z2jh"


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's rule: maps merge key by key, lists and scalars replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


def without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: without_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [without_descriptions(v) for v in schema]
    return schema


def chart_errors(config: dict[str, Any]) -> list[str]:
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    schema = without_descriptions(yaml.safe_load((Z2JH / "values.schema.yaml").read_text()))
    validator = jsonschema.Draft7Validator(schema)
    merged = deep_merge(defaults, config)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(merged)
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The config file plus what the documented install adds with ``--set-file``."""
    if not (Z2JH / "values.schema.yaml").is_file():
        pytest.fail(f"the chart's values and schema are missing from {Z2JH}")
    text = (ROOM / "z2jh-config.yaml").read_text()
    flag = "--set-file hub.extraFiles.workshop-auth.stringData=mlops_helpers/room/authenticator.py"
    assert flag in text, "the install command in the config's header changed"
    set_file = {
        "hub": {
            "extraFiles": {
                "workshop-auth": {
                    "stringData": (ROOT / "mlops_helpers" / "room" / "authenticator.py").read_text()
                }
            }
        }
    }
    return deep_merge(yaml.safe_load(text), set_file)


def test_the_room_config_validates_against_the_chart_schema(config: dict[str, Any]) -> None:
    assert chart_errors(config) == []


@pytest.mark.parametrize(
    "path, value",
    [
        (("singleuser", "memmory"), {"limit": "2G"}),  # a typo
        (("cull", "timeout"), "an hour"),  # a wrong type
        (("singleuser", "storage", "type"), "shared"),  # not one of the chart's storage types
    ],
)
def test_a_wrong_key_or_value_fails(
    config: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    broken = copy.deepcopy(config)
    node = broken
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert chart_errors(broken), f"{'.'.join(path)} = {value!r} was accepted"


def test_the_room_config_matches_the_local_room(config: dict[str, Any]) -> None:
    """Same authenticator, same culler, same instructor service, limits set."""
    from mlops_helpers.room.authenticator import NAME_PATTERN
    from mlops_helpers.room.spec import ROOM_SERVICE

    hub = config["hub"]
    assert "WorkshopAuthenticator" in hub["extraConfig"]["10-workshop-auth"]
    assert hub["config"]["Authenticator"]["username_pattern"] == NAME_PATTERN
    assert ROOM_SERVICE in hub["services"]
    scopes = hub["loadRoles"]["instructors"]["scopes"]
    assert f"access:services!service={ROOM_SERVICE}" in scopes
    assert config["cull"]["enabled"] is True
    single = config["singleuser"]
    assert single["memory"]["limit"] and single["cpu"]["limit"]
    assert single["extraEnv"]["MLOPS_ATTENDEE"] == "{username}"
    assert single["lifecycleHooks"]["postStart"]["exec"]["command"][0] == "gitpuller"


def test_the_room_manifests_are_valid_kubernetes() -> None:
    manifests = sorted((ROOM / "k8s").glob("*.yaml"))
    assert manifests
    validate = str(Path(sys.executable).parent / "kubernetes-validate")
    done = subprocess.run(
        [validate, "--strict", *map(str, manifests)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_built_from_the_locks() -> None:
    dockerfile = (ROOM / "Dockerfile").read_text()
    assert "requirements/project.lock.txt" in dockerfile
    assert "requirements/seldon-runtime.lock.txt" in dockerfile
    for lock in ("project.lock.txt", "seldon-runtime.lock.txt"):
        assert (ROOT / "requirements" / lock).is_file()
