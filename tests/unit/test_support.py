"""The shared test helpers find what a run left behind and what it listens on."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from mlops_helpers.servers import start_server
from mlops_helpers.waiting import wait_until
from tests import support
from tests.support import SocketWatch, leftover_processes, listening_sockets, not_loopback

# A server whose worker child listens (TCP) and also holds a bound UDP socket.
TREE = [
    sys.executable,
    "-c",
    "import socket, subprocess, sys; u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "u.bind(('127.0.0.1', 0)); w = subprocess.Popen([sys.executable, '-m', 'http.server', "
    "sys.argv[1], '--bind', '127.0.0.1']); sys.exit(w.wait())",
    "{port}",
]


def _system_wide_denied(kind: str = "inet") -> list:
    raise psutil.AccessDenied()  # what macOS answers a process that is not root


@pytest.mark.parametrize(
    "tables", ["/proc/net (Linux)", "system-wide", "per process (macOS without root)"]
)
def test_leftovers_and_listening_sockets_of_a_marked_tree(
    tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not tables.startswith("/proc"):  # psutil's paths, as on macOS
        monkeypatch.setattr(support, "_listening_by_inode", lambda: None)
    if tables.startswith("per process"):
        monkeypatch.setattr(psutil, "net_connections", _system_wide_denied)
    marker = str(tmp_path)
    server = start_server(
        "tree",
        TREE,
        run_dir=tmp_path,
        health_path="/",
        cwd=tmp_path,
        env={"MLOPS_RUN_ROOT": marker},
        timeout=30,
    )
    try:
        assert len(leftover_processes(marker)) == 2  # master and worker, by environment
        by_marker = listening_sockets(marker)
        assert listening_sockets([server.pid]) == by_marker  # the tree from its root pid
        tcp = [s for s in by_marker if s[2] == server.port]
        assert len(tcp) == 1 and tcp[0][1] == "127.0.0.1" and tcp[0][0] != server.pid
        udp = [s for s in by_marker if s[0] == server.pid]
        assert len(udp) == 1 and udp[0][1] == "127.0.0.1"
        assert not_loopback(by_marker) == []
    finally:
        server.stop()
    assert leftover_processes(marker) == []
    assert listening_sockets(marker) == []


def test_a_connected_client_socket_is_not_listening(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        client = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
                " sys.stdin.read()",
                str(port),
            ],
            stdin=subprocess.PIPE,
        )
        try:
            conn, _ = srv.accept()
            conn.close()
            assert listening_sockets([client.pid]) == []
        finally:
            client.communicate(b"", timeout=10)


@pytest.mark.parametrize(
    ("field", "family", "expected"),
    [
        ("0100007F:1F90", socket.AF_INET, ("127.0.0.1", 8080)),
        ("00000000:0016", socket.AF_INET, ("0.0.0.0", 22)),
        ("00000000000000000000000001000000:0050", socket.AF_INET6, ("::1", 80)),
        ("0000000000000000FFFF00000100007F:0050", socket.AF_INET6, ("::ffff:127.0.0.1", 80)),
        ("00000000000000000000000000000000:0050", socket.AF_INET6, ("::", 80)),
    ],
)
def test_proc_net_addresses_are_read_as_the_kernel_writes_them(
    field: str, family: int, expected: tuple[str, int]
) -> None:
    assert support._proc_net_address(field, family) == expected


def test_not_loopback_flags_every_address_others_can_reach() -> None:
    sockets = [
        (1, "127.0.0.1", 80),
        (2, "::1", 81),
        (3, "0.0.0.0", 82),
        (4, "::", 83),
        (5, "192.168.1.4", 84),
        (6, "fe80::1%eth0", 85),
    ]
    assert [s[0] for s in not_loopback(sockets)] == [3, 4, 5, 6]


def test_socket_watch_sees_a_server_that_came_and_went(tmp_path: Path) -> None:
    marker = str(tmp_path)
    with SocketWatch(marker, interval=0.1) as watch:
        server = start_server(
            "brief",
            TREE,
            run_dir=tmp_path,
            health_path="/",
            cwd=tmp_path,
            env={"MLOPS_RUN_ROOT": marker},
            timeout=30,
        )
        wait_until(
            lambda: any(s[2] == server.port for s in watch.seen),
            what="the sample",
            timeout=10,
            interval=0.05,
            progress=False,
        )
        server.stop()
    assert any(port == server.port and ip == "127.0.0.1" for _, ip, port in watch.seen)
    assert not_loopback(watch.seen) == []
