"""The room keeps people apart: an attendee cannot read, stop or become anyone else.

Two attendees sign in and start work. Ann, with only what her server gives her (a kernel
running shell commands, her own tokens, the hub's REST API), tries to read Ben's home and
notebooks, the room's secrets, to signal Ben's kernel and server, to open Ben's server, and to
call the hub's admin endpoints, while Ben's notebook runs. Every attempt must fail and Ben's
run complete unchanged. Then Ann's kernel allocates past her memory limit while Ben works: her
kernel is ended, Ben's work completes unchanged, and the room and both servers keep answering.

Runs as root (CI and the workshop VM are): only then does the room make system users."""

from __future__ import annotations

import hashlib
import json
import pwd
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from mlops_helpers.room.accounts import running_as_root
from mlops_helpers.room.hub import Room
from mlops_helpers.room.limits import ADDRESS_HEADROOM, parse_bytes
from mlops_helpers.room.remote import Attendee
from mlops_helpers.waiting import wait_until
from tests.fixtures.room import WORKSHOP_CODE, own_password
from tests.room.first_stages import first_stages

pytestmark = [
    pytest.mark.room,
    pytest.mark.slow,
    pytest.mark.xdist_group("room"),
    pytest.mark.skipif(not running_as_root(), reason="system users need a room run as root"),
]

NOTEBOOK = "mlops-workshop/notebooks/02_sagemaker_byo.ipynb"
BENS = "mlops-workshop/notebooks/02_sagemaker_byo-bens.ipynb"
SECRETS = [
    "instructor-code",
    "workshop-code",
    "room-admin-token-code",
    "jupyterhub_cookie_secret",
    "jupyterhub.sqlite",
    "room.json",
    "jupyterhub.log",
]

# Ann's cell: each attempt prints one line of JSON, {"what": ..., "outcome": ...}; an outcome
# starting with "DENIED" is what we want, anything else is an attempt that got through.
ATTACK = textwrap.dedent(
    """
    import json, os, signal, subprocess, requests

    def report(what, outcome):
        print(json.dumps({"what": what, "outcome": outcome}), flush=True)

    def shell(what, command):
        done = subprocess.run(command, shell=True, capture_output=True, text=True)
        report(what, "DENIED " + done.stderr.strip()[-80:] if done.returncode else
               "GOT " + done.stdout[:80])

    def http(what, method, url, token=None):
        headers = {"Authorization": f"token {token}"} if token else {}
        try:
            answer = requests.request(method, url, headers=headers, timeout=30,
                                      allow_redirects=False, json={})
        except requests.RequestException as exc:
            report(what, f"DENIED no answer {exc.__class__.__name__}")
            return
        ok = 200 <= answer.status_code < 300
        report(what, ("GOT " if ok else "DENIED ") + f"{answer.status_code} {answer.text[:60]}")

    facts = FACTS
    ben_home, room_dir = facts["ben_home"], facts["room_dir"]
    shell("list Ben's home", f"ls -a {ben_home}")
    shell("read Ben's notebook", f"cat {ben_home}/{facts['notebook']}")
    shell("write into Ben's home", f"echo owned > {ben_home}/owned.txt")
    shell("write into Ben's copy", f"echo owned >> {ben_home}/{facts['notebook']}")
    shell("list the room folder", f"ls -a {room_dir}")
    for name in facts["secrets"]:
        shell(f"read {name}", f"cat {room_dir}/{name}")
    for pid in facts["ben_pids"]:
        shell(f"read Ben's process {pid} environment", f"cat /proc/{pid}/environ")
        shell(f"SIGKILL Ben's process {pid}", f"kill -KILL {pid}")
        shell(f"SIGSTOP Ben's process {pid}", f"kill -STOP {pid}")
    shell("SIGTERM the hub", f"kill -TERM {facts['hub_pid']}")
    shell("become root", "su -c id root < /dev/null")

    hub, mine = facts["hub"], os.environ["JUPYTERHUB_API_TOKEN"]
    for token in (mine, facts["my_token"], None):
        label = {mine: "server token", facts["my_token"]: "own token", None: "no token"}[token]
        http(f"open Ben's files through the hub ({label})", "GET",
             f"{hub}/user/ben/api/contents/{facts['notebook']}", token)
        http(f"open Ben's server directly ({label})", "GET",
             f"{facts['ben_server']}api/contents/{facts['notebook']}", token)
        http(f"start a kernel on Ben's server ({label})", "POST",
             f"{facts['ben_server']}api/kernels", token)
    for method, path in [
        ("GET", "users"), ("GET", "users/ben"), ("POST", "users/ben/server"),
        ("DELETE", "users/ben/server"), ("POST", "users/ben/tokens"), ("DELETE", "users/ben"),
        ("POST", "users/mallory"), ("PATCH", "users/ann"), ("GET", "proxy"),
        ("GET", "services"), ("POST", "shutdown"), ("GET", "users/ben/tokens"),
    ]:
        http(f"hub admin: {method} {path}", method, f"{hub}/hub/api/{path}", facts["my_token"])
    http("the instructor page", "GET", f"{hub}/services/room/api/progress", facts["my_token"])
    """
)


@pytest.fixture
def attendees(room: Room) -> Iterator[tuple[Attendee, Attendee]]:
    pair = (
        Attendee(room.url, "ann", own_password("ann"), WORKSHOP_CODE),
        Attendee(room.url, "ben", own_password("ben"), WORKSHOP_CODE),
    )
    yield pair
    for attendee in pair:
        attendee.http.close()


def uid_of(room: Room, name: str) -> int:
    return pwd.getpwnam(room.spec.user_prefix + name).pw_uid


def processes_of(uid: int) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid]


def attack(room: Room, ann: Attendee) -> list[dict[str, str]]:
    ben = uid_of(room, "ben")
    wait_until(  # Ben's kernel has started: his server and kernel are there to attack
        lambda: len(processes_of(ben)),
        what="Ben's server and kernel",
        timeout=120,
        interval=0.2,
        until=lambda count: count >= 2,
        progress=False,
    )
    ben_pids = [p.pid for p in processes_of(ben)]
    server = room.api("GET", "users/ben").json()["servers"][""]
    passwords = [p.name for p in Path(room.spec.room_dir).glob("passwords.dbm*")]
    assert passwords, "the password store should exist once attendees signed in"
    facts = {
        "ben_home": str(room.spec.homes / "ben"),
        "room_dir": room.spec.room_dir,
        "notebook": BENS,
        "secrets": SECRETS + passwords,
        "ben_pids": ben_pids,
        "hub_pid": room.process.pid,
        "hub": room.url,
        "my_token": ann.token,
        # where Ben's server listens (Ann could read it from /proc/net/tcp)
        "ben_server": f"http://127.0.0.1:{_port_of(uid_of(room, 'ben'))}{server['url']}",
    }
    printed, error = ann.run_code(ATTACK.replace("FACTS", json.dumps(facts)))
    assert not error, error
    return [json.loads(line) for line in printed.splitlines() if line.startswith("{")]


def _port_of(uid: int) -> int:
    for proc in processes_of(uid):
        if "jupyterhub-singleuser" in " ".join(proc.cmdline()):
            return next(c.laddr.port for c in proc.net_connections() if c.status == "LISTEN")
    raise AssertionError("Ben's server is not listening")


def test_an_attendee_cannot_read_stop_or_become_anyone_else(
    room: Room, attendees: tuple[Attendee, Attendee]
) -> None:
    ann, ben = attendees
    with ThreadPoolExecutor(2) as pool:
        for attendee in (ann, ben):
            attendee.sign_in()
        list(pool.map(lambda a: a.start_server(), (ann, ben)))
    homes = room.spec.homes
    for name in ("ann", "ben"):  # each home is its owner's alone
        home = (homes / name).stat()
        assert home.st_uid == uid_of(room, name) and home.st_mode & 0o777 == 0o700
    room_dir = Path(room.spec.room_dir)
    assert room_dir.stat().st_mode & 0o777 == 0o711
    for name in ("instructor-code", "room-admin-token-code", "jupyterhub_cookie_secret"):
        assert (room_dir / name).stat().st_mode & 0o077 == 0, name

    notebook = first_stages(ben.notebook(NOTEBOOK), "train_status")
    ben.save_notebook(BENS, notebook)
    saved = ben.notebook(BENS)
    with ThreadPoolExecutor(1) as pool:
        bens_run = pool.submit(ben.run_notebook, BENS)
        attempts = attack(room, ann)
        run = bens_run.result(timeout=600)

    assert len(attempts) >= 40, attempts
    got_through = [a for a in attempts if not a["outcome"].startswith("DENIED")]
    assert got_through == [], got_through
    assert run.ok, run.error  # Ben's notebook ran to its end, undisturbed
    assert ben.notebook(BENS) == saved  # and is what Ben saved
    assert not (homes / "ben" / "owned.txt").exists()
    assert room.api("GET", "users/mallory").status_code == 404
    assert not room.api("GET", "users/ann").json()["admin"]


# Ann's kernel takes real memory (touched pages) in 64 MiB steps until it is refused, then
# holds it: only the room's enforcement (the watchdog, or a cgroup's OOM killer) ends it.
GROW = textwrap.dedent(
    """
    import time
    chunks = []
    try:
        for _ in range(STEPS):
            chunks.append(bytearray(b"x") * 2**26)
    except MemoryError:
        print("refused at", len(chunks) * 64, "MiB", flush=True)
    time.sleep(120)
    print("survived")
    """
)
# Ben's cell meanwhile: a result that depends on every step, over about ten seconds
BENS_WORK = textwrap.dedent(
    """
    import hashlib, time
    digest = b""
    for step in range(40):
        digest = hashlib.sha256(digest + bytes([step])).digest()
        time.sleep(0.25)
    print(digest.hex())
    """
)


def bens_expected() -> str:
    digest = b""
    for step in range(40):
        digest = hashlib.sha256(digest + bytes([step])).digest()
    return digest.hex()


def server_pid(uid: int) -> int:
    return next(
        p.pid for p in processes_of(uid) if "jupyterhub-singleuser" in " ".join(p.cmdline())
    )


def test_a_kernel_past_its_memory_limit_is_ended_and_nobody_else(
    room: Room, attendees: tuple[Attendee, Attendee]
) -> None:
    ann, ben = attendees
    for attendee in (ann, ben):
        attendee.sign_in()
        attendee.start_server()  # running already after the attack test: just its token
    servers = {name: server_pid(uid_of(room, name)) for name in ("ann", "ben")}
    steps = (parse_bytes(room.spec.mem_limit) + ADDRESS_HEADROOM) // 2**26 + 1
    with ThreadPoolExecutor(1) as pool:
        bens = pool.submit(ben.run_code, BENS_WORK)
        printed, error = ann.run_code(GROW.replace("STEPS", str(steps)), timeout_s=200)
        bens_printed, bens_error = bens.result(timeout=300)
    assert error == "the kernel died" and "survived" not in printed, (printed, error)
    log = (Path(room.spec.room_dir) / "jupyterhub.log").read_text()
    if room.spec.limits.startswith("a memory watchdog"):  # else a cgroup's OOM killer did
        assert "memory watchdog: ann held" in log
    assert "memory watchdog: ben" not in log
    # Ben's cell ran to its end with the right result, on the same server
    assert (bens_printed.strip(), bens_error) == (bens_expected(), "")
    assert server_pid(uid_of(room, "ben")) == servers["ben"]
    # the room, and Ann's own server, are unaffected
    assert room.api("GET", "/").ok
    assert ben.server_api("GET", "contents/mlops-workshop").status_code == 200
    assert server_pid(uid_of(room, "ann")) == servers["ann"]
    printed, error = ann.run_code("print(6 * 7)")
    assert (printed.strip(), error) == ("42", "")
