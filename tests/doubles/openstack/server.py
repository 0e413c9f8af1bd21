"""A small stateful OpenStack/Chameleon cloud on 127.0.0.1, for the real clients.

It answers the calls that python-chi 1.2, python-blazarclient 4.x, keystoneauth1 5.x,
python-novaclient (microversion 2.61) and python-neutronclient make for the continuous_x
chameleon backend, in the shapes of the OpenStack API references (Identity v3, Reservation
v1, Compute v2.1, Networking v2.0):

- Keystone: ``POST /identity/v3/auth/tokens`` with an application credential; the token
  carries the service catalog; every other call needs ``X-Auth-Token``
  (docs.openstack.org/api-ref/identity/v3, "Authenticating with an Application Credential").
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
- Nova (docs.openstack.org/api-ref/compute): flavors (list, detail, show, extra specs),
  servers (list with ``name`` filter, show, create, delete). On KVM@TACC every host belongs to
  a reservation: an instance boots (ACTIVE) only on the reserved flavor of a started lease,
  within its amount; any other flavor gives an ERROR instance with Nova's "No valid host was
  found" fault.
- Neutron (docs.openstack.org/api-ref/network/v2): floating IPs (list, update the port),
  security groups and their rules, ports; list filters as query parameters.

Errors come in each service's own shape (``error_body``), which the clients parse into their
exceptions. Left out: pagination, policy, microversion negotiation, images, volumes, routers,
quotas (except as injected faults: ``double.faults.inject("POST", r"/compute/v2.1/servers",
status=403, message="Quota exceeded for instances")`` stops a creation half way).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.doubles.http_base import ApiError, HttpDouble, Reply, Request, lookup

PROJECT_ID = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
USER_ID = "f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5"
BLAZAR_TIME = "%Y-%m-%dT%H:%M:%S.%f"
NOT_AUTHENTICATED = "The request you have made requires authentication."


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class CloudState:
    """Everything the double knows, and every change the services make to it; tests read it
    directly and may set the lease timing."""

    credential_id: str
    credential_secret: str
    floating_address: str = "127.0.0.1"
    # seconds from a lease's creation to ACTIVE (PENDING, then STARTING for the second
    # half); None: it never starts. lease_start_error: it ends in ERROR instead.
    lease_start_seconds: float | None = 0.4
    lease_start_error: bool = False
    tokens: set[str] = field(default_factory=set)
    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    floating_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # reserved flavors the project may not use yet (their lease has not started)
    hidden_flavors: set[str] = field(default_factory=set)
    # every status each lease was seen in, in order (tests read it)
    lease_history: dict[str, list[str]] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)  # lease id -> monotonic time

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
        self.create_security_group({"name": "default", "description": "Default security group"})

    # -- Keystone ---------------------------------------------------------------------------
    def issue_token(self, body: Any, catalog: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """A token for an application credential, with the service catalog."""
        identity = (body or {}).get("auth", {}).get("identity", {})
        credential = identity.get("application_credential", {})
        if identity.get("methods") != ["application_credential"] or (
            credential.get("id"),
            credential.get("secret"),
        ) != (self.credential_id, self.credential_secret):
            raise ApiError(401, "unauthorized", NOT_AUTHENTICATED)
        token = uuid.uuid4().hex
        self.tokens.add(token)
        now = _now()
        return token, {
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
                    "id": self.credential_id,
                    "name": "workshop",
                    "restricted": True,
                },
                "catalog": catalog,
            }
        }

    # -- Blazar -----------------------------------------------------------------------------
    def lease(self, lease_id: str) -> dict[str, Any]:
        return lookup(self.leases, lease_id, f"Object with {{'lease_id': '{lease_id}'}} not found")

    def create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not name or not body.get("reservations"):
            raise ApiError(400, "bad_request", "a lease needs a name and at least one reservation")
        if any(lease["name"] == name for lease in self.leases.values()):
            raise ApiError(409, "conflict", f"The lease with name: {name} already exists")
        lease_id, now = _id(), _now()
        end = datetime.strptime(body["end_date"], "%Y-%m-%d %H:%M")
        reservations = []
        for wanted in body["reservations"]:
            kind = wanted.get("resource_type")
            if kind == "flavor:instance" and wanted.get("flavor_id") not in self.flavors:
                raise ApiError(
                    400, "bad_request", f"flavor {wanted.get('flavor_id')} does not exist"
                )
            if kind not in ("flavor:instance", "virtual:floatingip"):
                raise ApiError(400, "bad_request", f"the double does not reserve {kind}")
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
        self.leases[lease_id] = lease
        self.lease_history[lease_id] = ["PENDING"]
        self.created_at[lease_id] = time.monotonic()
        for reservation in reservations:
            if reservation["resource_type"] == "flavor:instance":
                self._create_reserved_flavor(reservation)
        return lease

    def _create_reserved_flavor(self, reservation: dict[str, Any]) -> None:
        """The flavor Blazar's flavor plugin makes for a reservation (private until start)."""
        source = self.flavors[reservation["flavor_id"]]
        rid = reservation["id"]
        self.flavors[rid] = {
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
        self.hidden_flavors.add(rid)

    def advance_leases(self) -> None:
        """Move each lease along PENDING -> STARTING -> ACTIVE (or ERROR) by the clock."""
        if self.lease_start_seconds is None:
            return
        for lease in self.leases.values():
            elapsed = time.monotonic() - self.created_at[lease["id"]]
            if lease["status"] == "PENDING" and elapsed >= self.lease_start_seconds / 2:
                self._set_status(lease, "STARTING")
            if lease["status"] == "STARTING" and elapsed >= self.lease_start_seconds:
                if self.lease_start_error:
                    self._set_status(lease, "ERROR")
                else:
                    self._start_lease(lease)

    def _set_status(self, lease: dict[str, Any], status: str) -> None:
        lease["status"] = status
        self.lease_history[lease["id"]].append(status)

    def _start_lease(self, lease: dict[str, Any]) -> None:
        """What Blazar's start_lease event does: the reserved flavors become usable and the
        reserved floating IPs are allocated."""
        for reservation in lease["reservations"]:
            reservation["status"] = "active"
            if reservation["resource_type"] == "flavor:instance":
                self.hidden_flavors.discard(reservation["id"])
            if reservation["resource_type"] == "virtual:floatingip":
                for _ in range(int(reservation.get("amount", 1))):
                    fip = _id()
                    self.floating_ips[fip] = {
                        "id": fip,
                        "floating_ip_address": self.floating_address,
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

    def delete_lease(self, lease_id: str) -> None:
        lease = self.lease(lease_id)
        tags = {f"reservation:{r['id']}" for r in lease["reservations"]}
        for fid, fip in list(self.floating_ips.items()):
            if tags & set(fip["tags"]):
                del self.floating_ips[fid]
        reservations = {r["id"] for r in lease["reservations"]}
        for sid, server in list(self.servers.items()):
            if server["reservation"] in reservations:  # Blazar ends the lease's instances
                del self.servers[sid]
        for rid in reservations:  # and deletes the reserved flavors
            self.flavors.pop(rid, None)
            self.hidden_flavors.discard(rid)
        del self.leases[lease_id]

    # -- Nova -------------------------------------------------------------------------------
    def visible_flavors(self) -> dict[str, dict[str, Any]]:
        return {fid: f for fid, f in self.flavors.items() if fid not in self.hidden_flavors}

    def flavor(self, flavor_id: str) -> dict[str, Any]:
        return lookup(self.visible_flavors(), flavor_id, f"Flavor {flavor_id} could not be found.")

    def server(self, server_id: str) -> dict[str, Any]:
        return lookup(self.servers, server_id, f"Instance {server_id} could not be found.")

    def delete_server(self, server_id: str) -> None:
        self.server(server_id)
        del self.servers[server_id]

    def list_servers(self, name: str | None) -> list[dict[str, Any]]:
        return [
            s["view"]
            for s in self.servers.values()
            if name is None or re.search(name, s["view"]["name"])
        ]

    def create_server(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = body.get("server", {})
        flavor = self.flavors.get(spec.get("flavorRef"))
        if flavor is None or flavor["id"] in self.hidden_flavors:
            raise ApiError(
                400, "bad_request", f"Flavor {spec.get('flavorRef')} could not be found."
            )
        reservation = flavor["extra_specs"].get("aggregate_instance_extra_specs:reservation")
        active = {
            r["id"]: r
            for lease in self.leases.values()
            if lease["status"] == "ACTIVE"
            for r in lease["reservations"]
            if r["resource_type"] == "flavor:instance"
        }
        used = sum(1 for s in self.servers.values() if s["reservation"] == reservation)
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
            "flavor": {"original_name": flavor["name"]},
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
        self.servers[sid] = {"view": view, "reservation": reservation if placed else None}
        return {"id": sid, "links": [], "adminPass": "not-used"}

    # -- Neutron ----------------------------------------------------------------------------
    def update_floating_ip(self, fip_id: str, body: Any) -> dict[str, Any]:
        fip = self.floating_ip(fip_id)
        port = (body or {}).get("floatingip", {}).get("port_id")
        fip.update(port_id=port, status="ACTIVE" if port else "DOWN")
        return fip

    def floating_ip(self, fip_id: str) -> dict[str, Any]:
        return lookup(self.floating_ips, fip_id, f"Floating IP {fip_id} could not be found")

    def group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in self.rules.values() if r["security_group_id"] == group["id"]]
        return {**group, "security_group_rules": rules}

    def security_group(self, group_id: str) -> dict[str, Any]:
        message = f"Security group {group_id} could not be found"
        return self.group_view(lookup(self.security_groups, group_id, message))

    def create_security_group(self, spec: dict[str, Any]) -> dict[str, Any]:
        gid = _id()
        self.security_groups[gid] = {
            "id": gid,
            "name": spec.get("name", ""),
            "description": spec.get("description", ""),
            "project_id": PROJECT_ID,
            "tenant_id": PROJECT_ID,
            "tags": [],
        }
        return self.group_view(self.security_groups[gid])

    def delete_security_group(self, group_id: str) -> None:
        self.security_group(group_id)
        del self.security_groups[group_id]
        for rid in [r for r, v in self.rules.items() if v["security_group_id"] == group_id]:
            del self.rules[rid]

    def create_rule(self, spec: dict[str, Any]) -> dict[str, Any]:
        if spec.get("security_group_id") not in self.security_groups:
            raise ApiError(404, "not_found", "Security group could not be found")
        rid = _id()
        self.rules[rid] = {
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
        return self.rules[rid]


class OpenStackDouble(HttpDouble):
    """Keystone, Blazar, Nova and Neutron on one loopback port; routes only translate HTTP
    to ``CloudState`` calls."""

    name = "openstack"

    def __init__(
        self, credential_id: str = "app-cred-id", credential_secret: str = "app-cred-secret"
    ) -> None:
        super().__init__()
        self.state = CloudState(credential_id, credential_secret)
        self.auth_url = f"{self.url}/identity/v3"
        self._add_routes(self.state)

    def _add_routes(self, cloud: CloudState) -> None:
        """The route table: each route one ``CloudState`` call (or read)."""
        ok, item = Reply, r"/(?P<rid>[^/]+)"

        def get(pattern: str, answer: Any) -> None:  # a read: 200 with the answer
            self.route("GET", pattern, lambda r, **p: ok(200, answer(r, **p)))

        # Keystone
        self.route("POST", r"/identity/v3/auth/tokens", self._token, public=True)
        self.route("GET", r"/identity/v3", lambda r: ok(200, self.version()), public=True)
        # Blazar
        blazar = r"/reservation/v1/leases"
        get(blazar, lambda r: {"leases": list(cloud.leases.values())})
        self.route("POST", blazar, lambda r: ok(201, {"lease": cloud.create_lease(r.json() or {})}))
        get(blazar + item, lambda r, rid: {"lease": cloud.lease(rid)})
        self.route("DELETE", blazar + item, lambda r, rid: ok(204, cloud.delete_lease(rid)))
        # Nova
        nova = r"/compute/v2.1"
        flavors = cloud.visible_flavors
        get(nova + r"/flavors", lambda r: {"flavors": [_brief(f) for f in flavors().values()]})
        get(nova + r"/flavors/detail", lambda r: {"flavors": list(flavors().values())})
        get(nova + r"/flavors" + item, lambda r, rid: {"flavor": cloud.flavor(rid)})
        get(
            nova + r"/flavors" + item + r"/os-extra_specs",
            lambda r, rid: {"extra_specs": cloud.flavor(rid)["extra_specs"]},
        )
        for listing in (r"/servers", r"/servers/detail"):
            get(nova + listing, lambda r: {"servers": cloud.list_servers(r.arg("name"))})
        self.route(
            "POST",
            nova + r"/servers",
            lambda r: ok(202, {"server": cloud.create_server(r.json() or {})}),
        )
        get(nova + r"/servers" + item, lambda r, rid: {"server": cloud.server(rid)["view"]})
        self.route(
            "DELETE", nova + r"/servers" + item, lambda r, rid: ok(204, cloud.delete_server(rid))
        )
        # Neutron
        neutron = r"/network/v2.0"
        get(neutron + r"/networks", lambda r: {"networks": _filtered(cloud.networks, r)})
        get(neutron + r"/floatingips", lambda r: {"floatingips": _filtered(cloud.floating_ips, r)})
        get(neutron + r"/floatingips" + item, lambda r, rid: {"floatingip": cloud.floating_ip(rid)})
        self.route(
            "PUT",
            neutron + r"/floatingips" + item,
            lambda r, rid: ok(200, {"floatingip": cloud.update_floating_ip(rid, r.json())}),
        )
        groups = neutron + r"/security-groups"
        get(
            groups,
            lambda r: {
                "security_groups": _filtered(
                    {g: cloud.group_view(v) for g, v in cloud.security_groups.items()}, r
                )
            },
        )
        self.route(
            "POST",
            groups,
            lambda r: ok(
                201,
                {"security_group": cloud.create_security_group(_part(r, "security_group"))},
            ),
        )
        get(groups + item, lambda r, rid: {"security_group": cloud.security_group(rid)})
        self.route(
            "DELETE", groups + item, lambda r, rid: ok(204, cloud.delete_security_group(rid))
        )
        rules = neutron + r"/security-group-rules"
        get(rules, lambda r: {"security_group_rules": _filtered(cloud.rules, r)})
        self.route(
            "POST",
            rules,
            lambda r: ok(
                201,
                {"security_group_rule": cloud.create_rule(_part(r, "security_group_rule"))},
            ),
        )

    def _token(self, request: Request) -> Reply:
        token, answer = self.state.issue_token(request.json(), self.catalog())
        return Reply(201, answer, {"X-Subject-Token": token})

    def version(self) -> dict[str, Any]:
        link = {"rel": "self", "href": self.auth_url + "/"}
        return {"version": {"id": "v3.14", "status": "stable", "links": [link]}}

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

    # -- the base's hooks -------------------------------------------------------------------
    def before(self, request: Request) -> None:
        self.state.advance_leases()

    def authorize(self, request: Request) -> None:
        if request.headers.get("x-auth-token") not in self.state.tokens:
            raise ApiError(401, "unauthorized", NOT_AUTHENTICATED)

    def error_body(self, request: Request, error: ApiError) -> Any:
        """Each service's own error shape (the clients parse these into their exceptions)."""
        path, status, message = request.path, error.status, error.message
        if path.startswith("/network"):
            return {"NeutronError": {"type": "HTTPError", "message": message, "detail": ""}}
        if path.startswith("/compute"):
            name = {
                400: "badRequest",
                403: "forbidden",
                404: "itemNotFound",
                409: "conflictingRequest",
            }.get(status, "computeFault")
            return {name: {"code": status, "message": message}}
        if path.startswith("/identity"):
            return {"error": {"code": status, "message": message, "title": "Error"}}
        return {"error_code": status, "error_message": message, "error_name": status}


def _brief(flavor: dict[str, Any]) -> dict[str, Any]:
    return {"id": flavor["id"], "name": flavor["name"]}


def _part(request: Request, name: str) -> dict[str, Any]:
    """The resource named ``name`` in a Neutron request body (``{"security_group": {...}}``)."""
    return dict((request.json() or {}).get(name, {}))


def _filtered(items: dict[str, dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    """Neutron's list filters: ``?name=x&tags=y`` keep the items whose field matches."""
    found = []
    for item in items.values():
        keep = True
        for key, values in request.query.items():
            if key == "fields" or key not in item and key != "tags":
                continue
            if key == "tags":
                keep &= all(v in item.get("tags", []) for v in values)
            else:
                keep &= str(item[key]) in values
        if keep:
            found.append(item)
    return found
