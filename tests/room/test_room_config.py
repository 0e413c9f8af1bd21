"""The room's Kubernetes path, checked the way Helm and the API server would check it."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jupyterhub.traitlets import ByteSpecification

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


# -- the Kubernetes path runs: objects as the chart and KubeSpawner render them -------------

# The hub's NetworkPolicy as the chart renders it (zero-to-jupyterhub-k8s,
# jupyterhub/templates/hub/netpol.yaml, chart 4.x/5.x): only pods labelled
# hub.jupyter.org/network-access-hub=true reach the hub's API port (8081).
HUB_NETWORK_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "hub"},
    "spec": {
        "podSelector": {"matchLabels": {"component": "hub", "app": "jupyterhub"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}
                ],
                "ports": [{"port": "http"}],
            }
        ],
    },
}
HUB_API_PORT = 8081  # the hub container's port named "http" (templates/hub/deployment.yaml)
ATTENDEE = "ana"


def kubernetes_errors(objects: list[dict[str, Any]], tmp_path: Path) -> str:
    """kubernetes-validate --strict over the objects; '' when all are valid."""
    files = []
    for index, obj in enumerate(objects):
        path = tmp_path / f"{index}-{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj))
        files.append(str(path))
    validate = str(Path(sys.executable).parent / "kubernetes-validate")
    done = subprocess.run(
        [validate, "--strict", *files], capture_output=True, text=True, timeout=300
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def expand(value: Any) -> Any:
    """KubeSpawner's expansion of {username} in the values it templates."""
    if isinstance(value, str):
        return value.replace("{username}", ATTENDEE)
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


def attendee_pod(config: dict[str, Any]) -> dict[str, Any]:
    """The attendee's pod as KubeSpawner builds it from the chart's singleuser values (the
    parts this room sets: image, resources, security context, home volume, init step)."""
    merged = deep_merge(yaml.safe_load((Z2JH / "values.yaml").read_text()), config)
    single = merged["singleuser"]
    static = single["storage"]["static"]
    home_mount = {
        "name": "home",
        "mountPath": single["storage"]["homeMountPath"],
        "subPath": static["subPath"],
    }
    byte = ByteSpecification()
    return expand(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"jupyter-{ATTENDEE}",
                "labels": {"component": "singleuser-server"},
            },
            "spec": {
                "securityContext": {"fsGroup": single["fsGid"]},
                "initContainers": single.get("initContainers") or [],
                "containers": [
                    {
                        "name": "notebook",
                        "image": f"{single['image']['name']}:{single['image']['tag']}",
                        "securityContext": {"runAsUser": single["uid"]},
                        "env": [{"name": k, "value": v} for k, v in single["extraEnv"].items()],
                        "resources": {
                            "requests": {
                                "cpu": str(single["cpu"]["guarantee"]),
                                "memory": str(byte.validate(None, single["memory"]["guarantee"])),
                            },
                            "limits": {
                                "cpu": str(single["cpu"]["limit"]),
                                "memory": str(byte.validate(None, single["memory"]["limit"])),
                            },
                        },
                        "lifecycle": single["lifecycleHooks"],
                        "volumeMounts": [home_mount],
                    }
                ],
                "volumes": [
                    {"name": "home", "persistentVolumeClaim": {"claimName": static["pvcName"]}}
                ],
            },
        }
    )


def room_page_deployment() -> dict[str, Any]:
    objects = yaml.safe_load_all((ROOM / "k8s" / "instructor.yaml").read_text())
    return next(o for o in objects if o["kind"] == "Deployment")


@pytest.mark.room
def test_the_room_page_pod_passes_the_hubs_network_policy(tmp_path: Path) -> None:
    page = room_page_deployment()
    assert kubernetes_errors([HUB_NETWORK_POLICY, page], tmp_path) == ""
    labels = page["spec"]["template"]["metadata"]["labels"]
    for rule in HUB_NETWORK_POLICY["spec"]["ingress"]:
        selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
        assert any(labels.items() >= wanted.items() for wanted in selectors), labels
    env = {
        e["name"]: e.get("value") for e in page["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert f":{HUB_API_PORT}/" in env["JUPYTERHUB_API_URL"]


@pytest.mark.room
def test_an_attendees_home_is_theirs_before_their_server_starts(
    config: dict[str, Any], tmp_path: Path
) -> None:
    pod = attendee_pod(config)
    assert kubernetes_errors([pod], tmp_path) == ""
    notebook = pod["spec"]["containers"][0]
    home = notebook["volumeMounts"][0]
    assert home["subPath"] == f"homes/{ATTENDEE}"
    owner = (
        f"{notebook['securityContext']['runAsUser']}:{pod['spec']['securityContext']['fsGroup']}"
    )
    fixers = [
        init
        for init in pod["spec"]["initContainers"]
        if init.get("securityContext", {}).get("runAsUser") == 0
        and any(
            m["name"] == home["name"] and m.get("subPath") == home["subPath"]
            for m in init.get("volumeMounts", [])
        )
    ]
    assert fixers, "no init step as root on the attendee's home"
    command = " ".join(fixers[0]["command"])
    mount = next(m for m in fixers[0]["volumeMounts"] if m["name"] == home["name"])
    assert command.startswith("chown") and owner in command and mount["mountPath"] in command


@pytest.mark.room
def test_the_memory_guarantee_covers_the_measured_peak(config: dict[str, Any]) -> None:
    measured = json.loads((ROOT / "bench" / "results" / "room.json").read_text())
    # proportional set size: forked servers share most pages, so summed RSS counts them twice
    peak_mib = max(room["peak_pss_mib_per_attendee"] for room in measured["rooms"])
    memory = config["singleuser"]["memory"]
    byte = ByteSpecification()
    guarantee = byte.validate(None, memory["guarantee"])
    assert guarantee >= peak_mib * 2**20, (memory["guarantee"], f"{peak_mib} MiB measured")
    assert byte.validate(None, memory["limit"]) > guarantee


@pytest.mark.room
def test_notebooks_and_helpers_come_from_the_images_own_commit(config: dict[str, Any]) -> None:
    dockerfile = (ROOM / "Dockerfile").read_text()
    checkout = re.search(r"MLOPS_PROJECT_ROOT=(\S+)", dockerfile).group(1)
    branch = re.search(r"git checkout -q -B (\S+)", dockerfile).group(1)
    _, repo, pulled_branch, target = config["singleuser"]["lifecycleHooks"]["postStart"]["exec"][
        "command"
    ]
    assert (repo, pulled_branch) == (checkout, branch)
    assert target == "/home/jovyan/mlops-workshop"
    image = config["singleuser"]["image"]
    init_images = {i["image"] for i in config["singleuser"]["initContainers"]}
    assert init_images == {f"{image['name']}:{image['tag']}"}  # no other image to pull


@pytest.mark.room
def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(ROOM / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.room
def test_the_build_context_leaves_environments_runs_and_secrets_out(tmp_path: Path) -> None:
    """Docker's own reading of .dockerignore (the docker SDK's exclude_paths) over a checkout
    that has been built and has run a room."""
    from docker.utils.build import exclude_paths

    kept = [
        "Makefile",
        "requirements/project.lock.txt",
        "mlops_helpers/cli.py",
        "notebooks/01_seldon_kind.ipynb",
        "deploy/room/Dockerfile",
        ".git/HEAD",
    ]
    left_out = [
        ".venv/bin/python",
        ".venvs/seldon/bin/python",
        "runs/room/workshop-code",
        "runs/room/passwords.dbm",
        "runs/seldon_kind-ana/state.json",
        ".env",
        ".tools/node_modules/.bin/configurable-http-proxy",
        "build/01_seldon_kind.ipynb",
        "mlops_helpers/__pycache__/cli.cpython-311.pyc",
    ]
    for name in kept + left_out:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]
    context = exclude_paths(str(tmp_path), patterns, dockerfile="deploy/room/Dockerfile")
    assert set(kept) <= context
    assert context.isdisjoint(left_out), sorted(context & set(left_out))
