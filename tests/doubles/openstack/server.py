"""A small stateful OpenStack/Chameleon cloud on 127.0.0.1, for the real clients.

It answers the calls that python-chi 1.2, python-blazarclient 4.x, keystoneauth1 5.x,
python-novaclient (microversion 2.61) and python-neutronclient make for the continuous_x
chameleon backend, in the shapes of the OpenStack API references (Identity v3, Reservation
v1, Compute v2.1, Networking v2.0):

- Keystone: ``POST /identity/v3/auth/tokens`` with an application credential; the token
  carries the service catalog; every other call needs ``X-Auth-Token``.
- Blazar (Reservation API v1; lease states from Blazar's "State machines" page, zed): leases
  with flavor and floating-IP reservations (list, show, create, delete). A lease is created
  PENDING, passes through STARTING and is ACTIVE ``lease_start_seconds`` later (or ERROR
  when ``lease_start_error`` is set; it never starts when the delay is None). As
  ChameleonCloud/blazar's flavor plugin (blazar/plugins/flavor/flavor_plugin.py,
  ``_create_flavor``) does, a flavor reservation creates a private Nova flavor with the
  reservation's id, named ``reservation:<id>``, with the extra specs
  ``aggregate_instance_extra_specs:reservation`` and ``resources:CUSTOM_RESERVATION_<ID>``;
  the project may use it once the lease has started (instance_plugin ``on_start`` grants the
  flavor access), which is how python-chi 1.2's ``Lease.get_reserved_flavors`` finds it. The
  lease's floating IP is allocated in Neutron tagged ``reservation:<id>`` when it starts.
  Deleting the lease deletes its instances and flavor and releases the address.
- Nova: flavors (list, detail, show, extra specs), servers (list with ``name`` filter, show,
  create, delete). On KVM@TACC every host belongs to a reservation: an instance boots (ACTIVE)
  only on the reserved flavor of a started lease, within its amount; any other flavor gives an
  ERROR instance with Nova's "No valid host was found" fault.
- Neutron: floating IPs (list, update the port), security groups and their rules, ports.

Left out: pagination, policy, microversion negotiation, images, volumes, routers, quotas
(except as injected failures). ``fail(method, path_part, status)`` makes the next matching
call fail, so tests can stop a creation half way.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT_ID = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
USER_ID = "f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5"
BLAZAR_TIME = "%Y-%m-%dT%H:%M:%S.%f"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class Failure:
    method: str
    path_part: str
    status: int
    message: str
    times: int = 1
    skip: int = 0  # let this many matching calls through first


@dataclass
class CloudState:
    """Everything the double knows; tests read it directly."""

    credential_id: str
    credential_secret: str
    floating_address: str = "127.0.0.1"
    tokens: set[str] = field(default_factory=set)
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    floating_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # reserved flavors the project may not use yet (their lease has not started)
    hidden_flavors: set[str] = field(default_factory=set)
    # every status each lease was seen in, in order (tests read it)
    lease_history: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, vcpus, ram in (("m1.medium", 2, 4096), ("m1.large", 4, 8192)):
            fid = _id()
            self.flavors[fid] = {
                "id": fid,
                "name": name,
                "vcpus": vcpus,
                "ram": ram,
                "disk": 40,
                "OS-FLV-EXT-DATA:ephemeral": 0,
                "swap": 0,
                "rxtx_factor": 1.0,
                "os-flavor-access:is_public": True,
                "OS-FLV-DISABLED:disabled": False,
                "description": None,
                "extra_specs": {},
            }
        for name, external in (("public", True), ("sharednet1", False)):
            nid = _id()
            self.networks[nid] = {
                "id": nid,
                "name": name,
                "status": "ACTIVE",
                "router:external": external,
                "shared": True,
                "project_id": PROJECT_ID,
                "subnets": [],
                "tags": [],
            }
        default = _id()
        self.security_groups[default] = {
            "id": default,
            "name": "default",
            "description": "Default security group",
            "project_id": PROJECT_ID,
            "tenant_id": PROJECT_ID,
            "security_group_rules": [],
            "tags": [],
        }


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OpenStackDouble:
    """The HTTP server and its state; ``start()`` binds a free loopback port."""

    def __init__(
        self, credential_id: str = "app-cred-id", credential_secret: str = "app-cred-secret"
    ) -> None:
        self.state = CloudState(credential_id, credential_secret)
        # seconds from a lease's creation to ACTIVE (PENDING, then STARTING for the second
        # half); None: it never starts. lease_start_error: it ends in ERROR instead.
        self.lease_start_seconds: float | None = 0.4
        self.lease_start_error = False
        self._started_at: dict[str, float] = {}  # lease id -> monotonic time of creation
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def start(self) -> OpenStackDouble:
        double = self

        class Handler(_Handler):
            cloud = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- test controls ---------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path_part: str,
        status: int = 409,
        message: str = "Quota exceeded",
        times: int = 1,
        skip: int = 0,
    ) -> None:
        """After ``skip`` matching calls, the next ``times`` calls whose path contains
        ``path_part`` answer ``status`` with ``message``."""
        with self.lock:
            self.state.failures.append(Failure(method, path_part, status, message, times, skip))

    def catalog(self) -> list[dict[str, Any]]:
        def entry(kind: str, name: str, path: str) -> dict[str, Any]:
            url = f"{self.url}{path}"
            return {
                "type": kind,
                "name": name,
                "id": _id(),
                "endpoints": [
                    {
                        "id": _id(),
                        "interface": interface,
                        "region": "KVM@TACC",
                        "region_id": "KVM@TACC",
                        "url": url,
                    }
                    for interface in ("public", "internal", "admin")
                ],
            }

        return [
            entry("identity", "keystone", "/identity/v3"),
            entry("reservation", "blazar", "/reservation/v1"),
            entry("compute", "nova", "/compute/v2.1"),
            entry("network", "neutron", "/network"),
        ]

    # -- request dispatch --------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.state.calls.append((method, path))
            self._advance_leases()
            for failure in self.state.failures:
                if failure.method == method and failure.path_part in path and failure.times:
                    if failure.skip:
                        failure.skip -= 1
                        continue
                    failure.times -= 1
                    raise ApiError(failure.status, failure.message)
            if method == "POST" and path == "/identity/v3/auth/tokens":
                return self._token(body)
            if path in ("/identity/v3", "/identity/v3/"):
                return (
                    200,
                    {
                        "version": {
                            "id": "v3.14",
                            "status": "stable",
                            "links": [{"rel": "self", "href": self.auth_url + "/"}],
                        }
                    },
                    {},
                )
            if headers.get("x-auth-token") not in self.state.tokens:
                raise ApiError(401, "The request you have made requires authentication.")
            for prefix, handler in (
                ("/reservation/v1", self._blazar),
                ("/compute/v2.1", self._nova),
                ("/network/v2.0", self._neutron),
            ):
                if path.startswith(prefix):
                    return handler(method, path.removeprefix(prefix), query, body)
            raise ApiError(404, f"no such resource: {path}")

    # Keystone ------------------------------------------------------------------------------
    def _token(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        identity = (body or {}).get("auth", {}).get("identity", {})
        credential = identity.get("application_credential", {})
        if identity.get("methods") != ["application_credential"] or (
            credential.get("id"),
            credential.get("secret"),
        ) != (self.state.credential_id, self.state.credential_secret):
            raise ApiError(401, "The request you have made requires authentication.")
        token = uuid.uuid4().hex
        self.state.tokens.add(token)
        now = _now()
        answer = {
            "token": {
                "methods": ["application_credential"],
                "audit_ids": [uuid.uuid4().hex[:22]],
                "issued_at": now.isoformat() + "Z",
                "expires_at": (now + timedelta(hours=8)).isoformat() + "Z",
                "user": {
                    "id": USER_ID,
                    "name": "attendee",
                    "domain": {"id": "default", "name": "Default"},
                },
                "project": {
                    "id": PROJECT_ID,
                    "name": "CHI-000000",
                    "domain": {"id": "default", "name": "chameleon"},
                },
                "roles": [{"id": _id(), "name": "member"}],
                "application_credential": {
                    "id": self.state.credential_id,
                    "name": "workshop",
                    "restricted": True,
                },
                "catalog": self.catalog(),
            }
        }
        return 201, answer, {"X-Subject-Token": token}

    # Blazar --------------------------------------------------------------------------------
    def _blazar(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        leases = self.state.leases
        if path == "/leases" and method == "GET":
            return 200, {"leases": list(leases.values())}, {}
        if path == "/leases" and method == "POST":
            return 201, {"lease": self._create_lease(body or {})}, {}
        match = re.fullmatch(r"/leases/([^/]+)", path)
        if match:
            lease = leases.get(match.group(1))
            if lease is None:
                raise ApiError(404, f"Object with {{'lease_id': '{match.group(1)}'}} not found")
            if method == "GET":
                return 200, {"lease": lease}, {}
            if method == "DELETE":
                self._release_lease(lease)
                return 204, None, {}
        raise ApiError(405, f"{method} {path} is not allowed")

    def _create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not name or not body.get("reservations"):
            raise ApiError(400, "a lease needs a name and at least one reservation")
        if any(lease["name"] == name for lease in self.state.leases.values()):
            raise ApiError(409, f"The lease with name: {name} already exists")
        lease_id, now = _id(), _now()
        end = datetime.strptime(body["end_date"], "%Y-%m-%d %H:%M")
        reservations = []
        for wanted in body["reservations"]:
            kind = wanted.get("resource_type")
            if kind == "flavor:instance" and wanted.get("flavor_id") not in self.state.flavors:
                raise ApiError(400, f"flavor {wanted.get('flavor_id')} does not exist")
            if kind not in ("flavor:instance", "virtual:floatingip"):
                raise ApiError(400, f"the double does not reserve {kind}")
            reservations.append(
                {
                    **wanted,
                    "id": _id(),
                    "lease_id": lease_id,
                    "status": "pending",
                    "created_at": str(now),
                }
            )
        lease = {
            "id": lease_id,
            "name": name,
            "status": "PENDING",
            "degraded": False,
            "user_id": USER_ID,
            "project_id": PROJECT_ID,
            "start_date": now.strftime(BLAZAR_TIME),
            "end_date": end.strftime(BLAZAR_TIME),
            "created_at": now.strftime("%Y-%m-%d %H:%M:%S"),
            "updated_at": None,
            "reservations": reservations,
            "events": [],
            "trust_id": _id(),
        }
        self.state.leases[lease_id] = lease
        self.state.lease_history[lease_id] = ["PENDING"]
        self._started_at[lease_id] = time.monotonic()
        for reservation in reservations:
            if reservation["resource_type"] == "flavor:instance":
                self._create_reserved_flavor(reservation)
        return lease

    def _create_reserved_flavor(self, reservation: dict[str, Any]) -> None:
        """The flavor Blazar's flavor plugin makes for a reservation (private until start)."""
        source = self.state.flavors[reservation["flavor_id"]]
        rid = reservation["id"]
        self.state.flavors[rid] = {
            **source,
            "id": rid,
            "name": f"reservation:{rid}",
            "os-flavor-access:is_public": False,
            "description": f"lease {reservation['lease_id']}",
            "extra_specs": {
                **source["extra_specs"],
                "aggregate_instance_extra_specs:reservation": rid,
                f"resources:CUSTOM_RESERVATION_{rid.upper().replace('-', '_')}": "1",
            },
        }
        self.state.hidden_flavors.add(rid)

    def _advance_leases(self) -> None:
        """Move each lease along PENDING -> STARTING -> ACTIVE (or ERROR) by the clock."""
        if self.lease_start_seconds is None:
            return
        for lease in self.state.leases.values():
            elapsed = time.monotonic() - self._started_at[lease["id"]]
            if lease["status"] == "PENDING" and elapsed >= self.lease_start_seconds / 2:
                self._set_status(lease, "STARTING")
            if lease["status"] == "STARTING" and elapsed >= self.lease_start_seconds:
                if self.lease_start_error:
                    self._set_status(lease, "ERROR")
                else:
                    self._start_lease(lease)

    def _set_status(self, lease: dict[str, Any], status: str) -> None:
        lease["status"] = status
        self.state.lease_history[lease["id"]].append(status)

    def _start_lease(self, lease: dict[str, Any]) -> None:
        """What Blazar's start_lease event does: the reserved flavors become usable and the
        reserved floating IPs are allocated."""
        for reservation in lease["reservations"]:
            reservation["status"] = "active"
            if reservation["resource_type"] == "flavor:instance":
                self.state.hidden_flavors.discard(reservation["id"])
            if reservation["resource_type"] == "virtual:floatingip":
                for _ in range(int(reservation.get("amount", 1))):
                    fip = _id()
                    self.state.floating_ips[fip] = {
                        "id": fip,
                        "floating_ip_address": self.state.floating_address,
                        "floating_network_id": reservation.get("network_id"),
                        "port_id": None,
                        "fixed_ip_address": None,
                        "status": "DOWN",
                        "project_id": PROJECT_ID,
                        "tenant_id": PROJECT_ID,
                        "tags": [f"reservation:{reservation['id']}", "blazar"],
                        "description": "",
                    }
        self._set_status(lease, "ACTIVE")

    def _release_lease(self, lease: dict[str, Any]) -> None:
        tags = {f"reservation:{r['id']}" for r in lease["reservations"]}
        for fid, fip in list(self.state.floating_ips.items()):
            if tags & set(fip["tags"]):
                del self.state.floating_ips[fid]
        reservations = {r["id"] for r in lease["reservations"]}
        for sid, server in list(self.state.servers.items()):
            if server["reservation"] in reservations:  # Blazar ends the lease's instances
                del self.state.servers[sid]
        for rid in reservations:  # and deletes the reserved flavors
            self.state.flavors.pop(rid, None)
            self.state.hidden_flavors.discard(rid)
        del self.state.leases[lease["id"]]

    # Nova ----------------------------------------------------------------------------------
    def _nova(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        visible = {
            fid: f for fid, f in self.state.flavors.items() if fid not in self.state.hidden_flavors
        }
        if path in ("/flavors", "/flavors/detail") and method == "GET":
            flavors = list(visible.values())
            if path == "/flavors":
                flavors = [{"id": f["id"], "name": f["name"]} for f in flavors]
            return 200, {"flavors": flavors}, {}
        match = re.fullmatch(r"/flavors/([^/]+)(/os-extra_specs)?", path)
        if match and method == "GET":
            flavor = visible.get(match.group(1))
            if flavor is None:
                raise ApiError(404, f"Flavor {match.group(1)} could not be found.")
            if match.group(2):
                return 200, {"extra_specs": flavor["extra_specs"]}, {}
            return 200, {"flavor": flavor}, {}
        if path in ("/servers", "/servers/detail") and method == "GET":
            name = (query.get("name") or [None])[0]
            servers = [
                s["view"]
                for s in self.state.servers.values()
                if name is None or re.search(name, s["view"]["name"])
            ]
            return 200, {"servers": servers}, {}
        if path == "/servers" and method == "POST":
            return 202, {"server": self._create_server(body or {})}, {}
        match = re.fullmatch(r"/servers/([^/]+)", path)
        if match:
            server = self.state.servers.get(match.group(1))
            if server is None:
                raise ApiError(404, f"Instance {match.group(1)} could not be found.")
            if method == "GET":
                return 200, {"server": server["view"]}, {}
            if method == "DELETE":
                del self.state.servers[match.group(1)]
                return 204, None, {}
        raise ApiError(405, f"{method} {path} is not allowed")

    def _create_server(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("server", {})
        flavor = self.state.flavors.get(spec.get("flavorRef"))
        if flavor is None or flavor["id"] in self.state.hidden_flavors:
            raise ApiError(400, f"Flavor {spec.get('flavorRef')} could not be found.")
        reservation = flavor["extra_specs"].get("aggregate_instance_extra_specs:reservation")
        active = {
            r["id"]: r
            for lease in self.state.leases.values()
            if lease["status"] == "ACTIVE"
            for r in lease["reservations"]
            if r["resource_type"] == "flavor:instance"
        }
        used = sum(1 for s in self.state.servers.values() if s["reservation"] == reservation)
        # the scheduler places an instance only in an active reservation's hosts, and no more
        # instances than the reservation's amount
        placed = reservation in active and used < int(active[reservation]["amount"])
        sid, now = _id(), _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        view = {
            "id": sid,
            "name": spec.get("name"),
            "status": "ACTIVE",
            "tenant_id": PROJECT_ID,
            "user_id": USER_ID,
            "key_name": spec.get("key_name"),
            "flavor": {
                "original_name": self.state.flavors.get(spec.get("flavorRef"), {}).get(
                    "name", spec.get("flavorRef")
                )
            },
            "image": {"id": spec.get("imageRef")},
            "created": now,
            "updated": now,
            "addresses": {},
            "metadata": spec.get("metadata", {}),
            "links": [],
            "security_groups": spec.get("security_groups", []),
            "OS-EXT-STS:vm_state": "active" if placed else "error",
        }
        if not placed:
            view["status"] = "ERROR"
            view["fault"] = {
                "code": 500,
                "message": "No valid host was found. There are not enough hosts available.",
                "created": now,
            }
        self.state.servers[sid] = {"view": view, "reservation": reservation if placed else None}
        return {"id": sid, "links": [], "adminPass": "not-used"}

    # Neutron -------------------------------------------------------------------------------
    def _neutron(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.state
        if path == "/networks" and method == "GET":
            return 200, {"networks": _filtered(state.networks.values(), query)}, {}
        if path == "/floatingips" and method == "GET":
            return 200, {"floatingips": _filtered(state.floating_ips.values(), query)}, {}
        match = re.fullmatch(r"/floatingips/([^/]+)", path)
        if match and method in ("GET", "PUT"):
            fip = state.floating_ips.get(match.group(1))
            if fip is None:
                raise ApiError(404, f"Floating IP {match.group(1)} could not be found")
            if method == "PUT":
                port = (body or {}).get("floatingip", {}).get("port_id")
                fip.update(port_id=port, status="ACTIVE" if port else "DOWN")
            return 200, {"floatingip": fip}, {}
        if path == "/security-groups" and method == "GET":
            groups = [self._group_view(g) for g in state.security_groups.values()]
            return 200, {"security_groups": _filtered(groups, query)}, {}
        if path == "/security-groups" and method == "POST":
            spec = (body or {}).get("security_group", {})
            gid = _id()
            state.security_groups[gid] = {
                "id": gid,
                "name": spec.get("name", ""),
                "description": spec.get("description", ""),
                "project_id": PROJECT_ID,
                "tenant_id": PROJECT_ID,
                "tags": [],
            }
            return 201, {"security_group": self._group_view(state.security_groups[gid])}, {}
        match = re.fullmatch(r"/security-groups/([^/]+)", path)
        if match and match.group(1) in state.security_groups:
            if method == "GET":
                group = state.security_groups[match.group(1)]
                return 200, {"security_group": self._group_view(group)}, {}
            if method == "DELETE":
                del state.security_groups[match.group(1)]
                for rid in [
                    r for r, v in state.rules.items() if v["security_group_id"] == match.group(1)
                ]:
                    del state.rules[rid]
                return 204, None, {}
        if path == "/security-group-rules" and method == "GET":
            return 200, {"security_group_rules": _filtered(state.rules.values(), query)}, {}
        if path == "/security-group-rules" and method == "POST":
            spec = (body or {}).get("security_group_rule", {})
            if spec.get("security_group_id") not in state.security_groups:
                raise ApiError(404, "Security group could not be found")
            rid = _id()
            state.rules[rid] = {
                "id": rid,
                "direction": spec.get("direction", "ingress"),
                "ethertype": spec.get("ethertype", "IPv4"),
                "protocol": spec.get("protocol"),
                "port_range_min": spec.get("port_range_min"),
                "port_range_max": spec.get("port_range_max"),
                "remote_ip_prefix": spec.get("remote_ip_prefix"),
                "remote_group_id": None,
                "project_id": PROJECT_ID,
                "security_group_id": spec["security_group_id"],
            }
            return 201, {"security_group_rule": state.rules[rid]}, {}
        raise ApiError(404 if method == "GET" else 405, f"{method} {path} is not handled")

    def _group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in self.state.rules.values() if r["security_group_id"] == group["id"]]
        return {**group, "security_group_rules": rules}


def _filtered(items: Any, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Neutron's list filters: ``?name=x&tags=y`` keep the items whose field matches."""
    found = []
    for item in items:
        keep = True
        for key, values in query.items():
            if key == "fields" or key not in item and key != "tags":
                continue
            if key == "tags":
                keep &= all(v in item.get("tags", []) for v in values)
            else:
                keep &= str(item[key]) in values
        if keep:
            found.append(item)
    return found


def _error_body(path: str, err: ApiError) -> dict[str, Any]:
    """Each service's own error shape (the clients parse these into their exceptions)."""
    if path.startswith("/network"):
        return {"NeutronError": {"type": "HTTPError", "message": err.message, "detail": ""}}
    if path.startswith("/compute"):
        name = {
            400: "badRequest",
            403: "forbidden",
            404: "itemNotFound",
            409: "conflictingRequest",
        }.get(err.status, "computeFault")
        return {name: {"code": err.status, "message": err.message}}
    if path.startswith("/identity"):
        return {"error": {"code": err.status, "message": err.message, "title": "Error"}}
    return {"error_code": err.status, "error_message": err.message, "error_name": err.status}


class _Handler(BaseHTTPRequestHandler):
    cloud: OpenStackDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .calls
        return

    def _any(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
            status, answer, extra = self.cloud.handle(
                self.command, parts.path, parse_qs(parts.query), headers, body
            )
        except ApiError as err:
            status, extra = err.status, {}
            answer = _error_body(parts.path, err)
        except ValueError:
            status, extra, answer = 400, {}, {"error_message": "body is not JSON"}
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any
