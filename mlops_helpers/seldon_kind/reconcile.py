"""Reconcile: make an environment's running servers match a set of manifests.

This is the job Argo CD does in the write-up. It is idempotent (an unchanged deployment
keeps its process), records the commit it synced, and replaces a changed deployment only
once the new server is healthy: a manifest that cannot start leaves the old one serving.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from mlops_helpers.errors import StageError
from mlops_helpers.pipeline import StageContext
from mlops_helpers.seldon_kind.serving import ImageIndex, resolve, start_unit, warm_launcher
from mlops_helpers.servers import ManagedServer


class ReconcileFailed(StageError):
    """Some deployments could not start; the previous versions keep serving."""

    def __init__(self, env: str, failed: dict[str, str]) -> None:
        self.failed = failed
        lines = "\n".join(f"  {name}: {reason.splitlines()[0]}" for name, reason in failed.items())
        super().__init__(
            f"{env}: {len(failed)} deployment(s) could not start; the previous "
            f"version keeps serving:\n{lines}"
        )


def spec_hash(doc: dict[str, Any]) -> str:
    """What decides a restart: the document without its annotations (they record which run
    tested it; a new note on the same spec must not restart a healthy server)."""
    metadata = {k: v for k, v in doc.get("metadata", {}).items() if k != "annotations"}
    served = {**doc, "metadata": metadata}
    return hashlib.sha256(json.dumps(served, sort_keys=True).encode()).hexdigest()[:12]


def parse(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """SeldonDeployment name -> document, from manifest texts (other kinds are skipped)."""
    docs: dict[str, dict[str, Any]] = {}
    for text in files.values():
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "SeldonDeployment":
                docs[doc["metadata"]["name"]] = doc
    return docs


class Environment:
    """One environment's running servers and the record of what they serve."""

    def __init__(self, ctx: StageContext, name: str, python: Path) -> None:
        self.ctx = ctx
        self.name = name
        self.python = python
        self.path = ctx.run_dir / "environments" / f"{name}.json"

    def record(self) -> dict[str, Any]:
        if self.path.is_file():
            return dict(json.loads(self.path.read_text()))
        return {"environment": self.name, "commit": None, "deployments": {}}

    def _save(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(record, indent=2))

    def _alive(self, entry: dict[str, Any]) -> bool:
        return ManagedServer.from_dict(entry["server"]).alive()

    def apply(self, files: dict[str, str], commit: str | None) -> dict[str, Any]:
        """Bring the running servers in line with ``files``; returns what changed."""
        record = self.record()
        current: dict[str, Any] = record["deployments"]
        desired = parse(files)
        tracker = self.ctx.tracker
        index = ImageIndex(self.ctx.run_dir / "images")
        store = self.ctx.run_dir / "model-store"
        kept, todo = [], {}
        for name, doc in desired.items():
            digest = spec_hash(doc)
            entry = current.get(name)
            if entry and entry["spec_hash"] == digest and self._alive(entry):
                kept.append(name)
            else:
                todo[name] = (doc, digest)
        # every server is forked from one warm launcher (started here if it does not run)
        launcher = warm_launcher(self.ctx, self.python)
        if todo:
            launcher.url()

        def start(item: tuple[str, tuple[dict[str, Any], str]]) -> tuple[str, Any]:
            name, (doc, digest) = item
            try:
                unit = resolve(doc, index, store)
                server = start_unit(launcher, unit, f"seldon-{self.name}-{name}-{digest[:8]}")
            except StageError as exc:  # ServerStartError is not one: catch both
                return name, str(exc)
            except Exception as exc:  # a start failure is data here
                return name, f"{type(exc).__name__}: {exc}"
            return name, {
                "spec_hash": digest,
                "url": server.url,
                "image": unit.image,
                "version": unit.version,
                "server": server.to_dict(),
            }

        with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
            outcomes = dict(pool.map(start, todo.items()))
        failed = {n: o for n, o in outcomes.items() if isinstance(o, str)}
        started = {n: o for n, o in outcomes.items() if not isinstance(o, str)}
        for name, entry in started.items():
            old = current.get(name)
            if old:  # the new one is healthy: now the old one may go, by its own pid (a
                # dead server restarted with the same spec has the same name as the new one)
                ManagedServer.from_dict(old["server"]).stop()
                if old["server"]["name"] != entry["server"]["name"]:
                    tracker.forget(f"process:{old['server']['name']}")
            current[name] = entry
        stopped = [] if failed else [n for n in list(current) if n not in desired]
        for name in stopped:
            tracker.release(f"process:{current.pop(name)['server']['name']}")
        if not failed:
            record["commit"] = commit
        record["failed"] = {"commit": commit, "deployments": failed} if failed else None
        self._save(record)
        report = {
            "environment": self.name,
            "commit": record["commit"],
            "started": sorted(started),
            "kept": sorted(kept),
            "stopped": stopped,
            "failed": failed,
            "deployments": {
                n: {k: e[k] for k in ("url", "version", "image")} for n, e in current.items()
            },
        }
        if failed:
            raise ReconcileFailed(self.name, failed)
        return report

    def stop_all(self) -> None:
        record = self.record()
        for entry in record["deployments"].values():
            self.ctx.tracker.release(f"process:{entry['server']['name']}")
        record.update(deployments={}, commit=None)
        self._save(record)

    def urls(self) -> dict[str, str]:
        return {n: e["url"] for n, e in self.record()["deployments"].items()}
