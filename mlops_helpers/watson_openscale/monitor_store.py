"""The OpenScale-style monitoring store, in one SQLite file (stdlib ``sqlite3``).

Tables: subscriptions (a deployment, its training-data schema, label column, problem type),
payload_log (every valid scoring request and its response), feedback_log (labelled rows),
monitor_instances (a monitor's parameters and thresholds), monitor_runs and metrics (each
metric with its threshold and pass/fail). The scoring server writes the payload log from
its own process, so the file runs in WAL mode with a busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL UNIQUE,
    deployment_name TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    scoring_url TEXT NOT NULL,
    label_column TEXT NOT NULL,
    problem_type TEXT NOT NULL,
    feature_fields TEXT NOT NULL,
    training_schema TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payload_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scoring_id TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    response_time_ms REAL NOT NULL,
    source TEXT NOT NULL,
    created TEXT NOT NULL,
    content_key TEXT
);
CREATE INDEX IF NOT EXISTS payload_by_deployment ON payload_log (deployment_id);
CREATE TABLE IF NOT EXISTS feedback_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL,
    features TEXT NOT NULL,
    label INTEGER NOT NULL,
    created TEXT NOT NULL,
    content_key TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_subscription ON feedback_log (subscription_id);
CREATE TABLE IF NOT EXISTS monitor_instances (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    monitor TEXT NOT NULL,
    parameters TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    updated TEXT NOT NULL,
    UNIQUE (subscription_id, monitor)
);
CREATE TABLE IF NOT EXISTS monitor_runs (
    id TEXT PRIMARY KEY,
    monitor_instance_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    confusion_matrix TEXT,
    labels TEXT,
    started TEXT NOT NULL,
    finished TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    threshold REAL,
    threshold_type TEXT,
    passed INTEGER,
    PRIMARY KEY (run_id, metric)
);
"""
# rows are keyed by content, so a rerun that logs the same thing adds nothing
KEYS = """
CREATE UNIQUE INDEX IF NOT EXISTS payload_once ON payload_log (deployment_id, content_key);
CREATE UNIQUE INDEX IF NOT EXISTS feedback_once ON feedback_log (subscription_id, content_key);
"""


def content_key(value: Any) -> str:
    """The identity of a logged request or feedback row: the same content, the same key."""
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:32]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class MonitorStore:
    """One SQLite file; short transactions so the scoring server and the stages can share it."""

    def __init__(self, path: Path, *, keep_open: bool = False) -> None:
        """``keep_open``: one connection for the object's life (the scoring server's case:
        a connection per request would cost more than the prediction)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        db = self._open()
        db.executescript(SCHEMA)
        for table in ("payload_log", "feedback_log"):  # a monitor.db from an older version
            columns = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
            if "content_key" not in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN content_key TEXT")
        db.executescript(KEYS)
        if keep_open:
            self._db = db
        else:
            db.close()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps this crash-safe
        db.execute("PRAGMA busy_timeout=30000")
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._db is not None:
            yield self._db
            return
        db = self._open()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._connection() as db:
            return [dict(r) for r in db.execute(sql, args).fetchall()]

    # -- subscriptions --------------------------------------------------------------------
    def upsert_subscription(
        self,
        *,
        deployment_id: str,
        deployment_name: str,
        model_name: str,
        model_version: str,
        scoring_url: str,
        label_column: str,
        problem_type: str,
        feature_fields: list[str],
        training_schema: dict[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        """Find the deployment's subscription and update it, or create it: (row, created)."""
        stamp = now()
        values = (
            deployment_name,
            model_name,
            model_version,
            scoring_url,
            label_column,
            problem_type,
            json.dumps(feature_fields),
            json.dumps(training_schema),
            stamp,
        )
        with self.transaction() as db:
            found = db.execute(
                "SELECT id FROM subscriptions WHERE deployment_id = ?", (deployment_id,)
            ).fetchone()
            if found:
                db.execute(
                    "UPDATE subscriptions SET deployment_name=?, model_name=?, model_version=?,"
                    " scoring_url=?, label_column=?, problem_type=?, feature_fields=?,"
                    " training_schema=?, updated=? WHERE id=?",
                    (*values, found["id"]),
                )
                sid, created = found["id"], False
            else:
                sid, created = str(uuid.uuid4()), True
                db.execute(
                    "INSERT INTO subscriptions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (sid, deployment_id, *values[:-1], stamp, stamp),
                )
        return self.subscription(sid), created

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,))
        if not rows:
            raise KeyError(f"subscription {subscription_id} does not exist")
        row = rows[0]
        row["feature_fields"] = json.loads(row["feature_fields"])
        row["training_schema"] = json.loads(row["training_schema"])
        return row

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT id, deployment_id, deployment_name, model_version "
            "FROM subscriptions ORDER BY created"
        )

    def delete_subscription(self, subscription_id: str) -> None:
        """The subscription, its monitors, their runs and metrics, and its logs."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT deployment_id FROM subscriptions WHERE id = ?", (subscription_id,)
            ).fetchone()
            instances = [
                r["id"]
                for r in db.execute(
                    "SELECT id FROM monitor_instances WHERE subscription_id = ?", (subscription_id,)
                )
            ]
            for instance in instances:
                db.execute(
                    "DELETE FROM metrics WHERE run_id IN (SELECT id FROM monitor_runs "
                    "WHERE monitor_instance_id = ?)",
                    (instance,),
                )
                db.execute("DELETE FROM monitor_runs WHERE monitor_instance_id = ?", (instance,))
            db.execute(
                "DELETE FROM monitor_instances WHERE subscription_id = ?", (subscription_id,)
            )
            db.execute("DELETE FROM feedback_log WHERE subscription_id = ?", (subscription_id,))
            if row:
                db.execute(
                    "DELETE FROM payload_log WHERE deployment_id = ?", (row["deployment_id"],)
                )
            db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
        self.vacuum()

    def delete_deployment_logs(self, deployment_id: str) -> None:
        """Every payload row of a deployment (a deployment that is gone logs nothing)."""
        with self.transaction() as db:
            db.execute("DELETE FROM payload_log WHERE deployment_id = ?", (deployment_id,))
        self.vacuum()

    def vacuum(self) -> None:
        """Give the pages of deleted rows back to the file system: the file shrinks."""
        with self._connection() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def subscribed(self, deployment_id: str) -> bool:
        """True when the deployment has a subscription: only then is scoring logged."""
        return bool(
            self._rows("SELECT 1 FROM subscriptions WHERE deployment_id = ?", (deployment_id,))
        )

    # -- payload log ----------------------------------------------------------------------
    def log_payload(
        self,
        *,
        deployment_id: str,
        model_version: str,
        request: Any,
        response: Any,
        n_rows: int,
        response_time_ms: float,
        source: str = "client",
    ) -> bool:
        """Log one scoring request, once per content (model version, request, source);
        True when it was new."""
        key = content_key([model_version, request, source])
        with self.transaction() as db:
            done = db.execute(
                "INSERT OR IGNORE INTO payload_log (scoring_id, deployment_id, model_version,"
                " n_rows, request, response, response_time_ms, source, created, content_key)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    str(uuid.uuid4()),
                    deployment_id,
                    model_version,
                    n_rows,
                    json.dumps(request),
                    json.dumps(response),
                    response_time_ms,
                    source,
                    now(),
                    key,
                ),
            )
        return bool(done.rowcount)

    def payload_logged(
        self, deployment_id: str, model_version: str, requests: list[Any], source: str = "client"
    ) -> int:
        """How many of these requests are in the payload log."""
        keys = [content_key([model_version, r, source]) for r in requests]
        found = (
            {
                r["content_key"]
                for r in self._rows(
                    "SELECT content_key FROM payload_log"
                    " WHERE deployment_id = ? AND content_key IN "
                    f"({','.join('?' * len(keys))})",
                    [deployment_id, *keys],
                )
            }
            if keys
            else set()
        )
        return sum(1 for k in keys if k in found)

    def payload_count(self, deployment_id: str, source: str | None = None) -> int:
        sql = "SELECT COUNT(*) AS n FROM payload_log WHERE deployment_id = ?"
        args: list[Any] = [deployment_id]
        if source:
            sql += " AND source = ?"
            args.append(source)
        return int(self._rows(sql, args)[0]["n"])

    def payload_records(self, deployment_id: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM payload_log WHERE deployment_id = ? ORDER BY id DESC LIMIT ?",
            (deployment_id, limit),
        )
        for row in rows:
            row["request"] = json.loads(row["request"])
            row["response"] = json.loads(row["response"])
        return rows

    # -- feedback log ---------------------------------------------------------------------
    def add_feedback(self, subscription_id: str, rows: list[tuple[list[float], int]]) -> int:
        """Store the rows not stored before (keyed by features and label); how many were new."""
        stamp = now()
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO feedback_log (subscription_id, features, label, created,"
                " content_key) VALUES (?,?,?,?,?)",
                [
                    (subscription_id, json.dumps(x), int(y), stamp, content_key([x, int(y)]))
                    for x, y in rows
                ],
            )
            added = db.total_changes - before
        return int(added)

    def feedback_count(self, subscription_id: str) -> int:
        return int(
            self._rows(
                "SELECT COUNT(*) AS n FROM feedback_log WHERE subscription_id = ?",
                (subscription_id,),
            )[0]["n"]
        )

    def latest_feedback(
        self, subscription_id: str, limit: int
    ) -> tuple[list[list[float]], list[int]]:
        """The newest ``limit`` feedback rows, oldest first."""
        rows = self._rows(
            "SELECT features, label FROM feedback_log WHERE subscription_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (subscription_id, limit),
        )
        rows.reverse()
        return [json.loads(r["features"]) for r in rows], [int(r["label"]) for r in rows]

    # -- monitors -------------------------------------------------------------------------
    def upsert_monitor(
        self,
        subscription_id: str,
        monitor: str,
        parameters: dict[str, Any],
        thresholds: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        with self.transaction() as db:
            found = db.execute(
                "SELECT id FROM monitor_instances WHERE subscription_id = ? AND monitor = ?",
                (subscription_id, monitor),
            ).fetchone()
            if found:
                mid, created = found["id"], False
                db.execute(
                    "UPDATE monitor_instances SET parameters=?, thresholds=?, updated=? WHERE id=?",
                    (json.dumps(parameters), json.dumps(thresholds), now(), mid),
                )
            else:
                mid, created = str(uuid.uuid4()), True
                db.execute(
                    "INSERT INTO monitor_instances VALUES (?,?,?,?,?,?)",
                    (
                        mid,
                        subscription_id,
                        monitor,
                        json.dumps(parameters),
                        json.dumps(thresholds),
                        now(),
                    ),
                )
        return self.monitor(mid), created

    def monitor(self, monitor_instance_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM monitor_instances WHERE id = ?", (monitor_instance_id,))
        if not rows:
            raise KeyError(f"monitor instance {monitor_instance_id} does not exist")
        row = rows[0]
        row["parameters"] = json.loads(row["parameters"])
        row["thresholds"] = json.loads(row["thresholds"])
        return row

    def monitors(self, subscription_id: str) -> list[dict[str, Any]]:
        return [
            self.monitor(r["id"])
            for r in self._rows(
                "SELECT id FROM monitor_instances WHERE subscription_id = ?", (subscription_id,)
            )
        ]

    def record_run(
        self,
        monitor_instance_id: str,
        *,
        status: str,
        message: str,
        n_rows: int,
        started: str,
        metrics: list[dict[str, Any]] | None = None,
        confusion_matrix: list[list[int]] | None = None,
        labels: list[int] | None = None,
    ) -> str:
        run_id = str(uuid.uuid4())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO monitor_runs VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    monitor_instance_id,
                    status,
                    message,
                    n_rows,
                    None if confusion_matrix is None else json.dumps(confusion_matrix),
                    None if labels is None else json.dumps(labels),
                    started,
                    now(),
                ),
            )
            db.executemany(
                "INSERT INTO metrics VALUES (?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        m["metric"],
                        m["value"],
                        m.get("threshold"),
                        m.get("threshold_type"),
                        None if m.get("passed") is None else int(m["passed"]),
                    )
                    for m in metrics or []
                ],
            )
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM monitor_runs WHERE id = ?", (run_id,))
        if not rows:
            raise KeyError(f"monitor run {run_id} does not exist")
        row = rows[0]
        for key in ("confusion_matrix", "labels"):
            row[key] = None if row[key] is None else json.loads(row[key])
        row["metrics"] = [
            {**m, "passed": None if m["passed"] is None else bool(m["passed"])}
            for m in self._rows(
                "SELECT metric, value, threshold, threshold_type, passed "
                "FROM metrics WHERE run_id = ? ORDER BY metric",
                (run_id,),
            )
        ]
        return row

    def runs(self, monitor_instance_id: str) -> list[dict[str, Any]]:
        return [
            self.run(r["id"])
            for r in self._rows(
                "SELECT id FROM monitor_runs WHERE monitor_instance_id = ? ORDER BY started",
                (monitor_instance_id,),
            )
        ]

    def counts(self) -> dict[str, int]:
        """Rows per table: what a test or the notebook checks after a run or a cleanup."""
        tables = (
            "subscriptions",
            "payload_log",
            "feedback_log",
            "monitor_instances",
            "monitor_runs",
            "metrics",
        )
        return {t: int(self._rows(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]) for t in tables}
