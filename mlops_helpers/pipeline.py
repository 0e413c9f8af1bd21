"""A scenario is an ordered list of named stages; the code of each stage lives once, here.

The notebook, the CLI (``mlops-workshop SCENARIO STAGE``) and the Jenkinsfile all run the
same stages. State a later stage needs is kept in ``<run_dir>/state.json``, so each stage
can run in its own process, as Jenkins runs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_helpers.backends import BackendRegistry
from mlops_helpers.config import Settings, mask_text
from mlops_helpers.scenario import COMMON_SETTINGS

if TYPE_CHECKING:
    from mlops_helpers.scenario import Scenario
from mlops_helpers.errors import CorruptFileError, StageError, UnknownNameError
from mlops_helpers.progress import stage_progress
from mlops_helpers.provenance import record_provenance, refuse_stale_inputs
from mlops_helpers.resources import ResourceTracker, read_json

_COMMON = {s.name for s in COMMON_SETTINGS}


class StateStore:
    """A small JSON document in the run directory, shared by the stages of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = read_json(self.path, {}, dict)
        return data

    def get(self, key: str, default: Any = None) -> Any:
        return self.load().get(key, default)

    def update(self, **values: Any) -> None:
        data = self.load()
        data.update(values)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.path)

    def pop(self, key: str) -> Any:
        data = self.load()
        value = data.pop(key, None)
        self.path.write_text(json.dumps(data, indent=2, default=str))
        return value

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class StageContext:
    """What a stage gets: settings, its run directory, the tracker, state and a backend."""

    settings: Settings
    registry: BackendRegistry[Any]
    log: Callable[[str], None] = print
    _backend: Any = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        return self.settings.run_dir

    @property
    def tracker(self) -> ResourceTracker:
        return ResourceTracker(self.run_dir)

    @property
    def state(self) -> StateStore:
        return StateStore(self.run_dir / "state.json")

    @property
    def backend(self) -> Any:
        if self._backend is None:
            self._backend = self.registry.create(self.settings.backend, self)
        return self._backend

    def say(self, message: str) -> None:
        """Log with every known secret masked."""
        self.log(mask_text(message, self.settings.secrets()))


StageFunc = Callable[[StageContext], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunc
    description: str
    gate: bool = False  # a gate stops the pipeline when it fails
    environment: str | None = None  # 'test', 'staging', 'production', ...
    # what its result is made from (see provenance.py): the settings it reads, the earlier
    # stages whose results it uses, and any other input (a code digest) it computes
    inputs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    fingerprint: Callable[[StageContext], Mapping[str, Any]] | None = None


@dataclass
class Pipeline:
    """A scenario's ordered stages and its backend registry."""

    scenario: str
    stages: list[Stage]
    backends: BackendRegistry[Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    cleanup_stage: str | None = "cleanup"

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UnknownNameError(f"{self.scenario} stage", name, self.stage_names())

    def settings(self, **params: Any) -> Settings:
        return Settings.load(self.scenario, params=params, defaults=self.defaults)

    def spec(self) -> Scenario:
        """The scenario's declaration; a pipeline no entry point registers (a test's own)
        gets one with the common settings and its defaults as text."""
        from mlops_helpers.scenario import Backend, Scenario, Setting
        from mlops_helpers.scenarios import find_scenario

        found = find_scenario(self.scenario)
        if found is not None:
            return found
        own = tuple(Setting(k, v) for k, v in self.defaults.items() if k not in _COMMON)
        backends = tuple(Backend(n) for n in self.backends.names())
        return Scenario(self.scenario, self.scenario, "", "", backends, own)

    def known_settings(self) -> list[str]:
        """Every setting this scenario reads, as its spec declares them."""
        return sorted(self.spec().declared())

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters checked before any work: an unknown name is an error listing the known
        ones; a declared type or range is enforced. Returns the values, typed."""
        spec = self.spec()
        return {key: spec.check(key, value) for key, value in params.items()}

    def context(
        self, settings: Settings | None = None, log: Callable[[str], None] = print, **params: Any
    ) -> StageContext:
        """A stage context; the settings' tool values (credentials from ``.env`` too) are
        exported to the process environment first, so every SDK and tool sees them."""
        resolved = settings or self.settings(**params)
        resolved.export_env()
        return StageContext(resolved, self.backends, log)

    def run_stage(self, name: str, ctx: StageContext) -> dict[str, Any]:
        """Run one stage; its result (a dict) is also saved under ``results.<stage>``."""
        stage = self.stage(name)
        # a bad setting is refused before any gate or state is looked at, as the CLI does:
        # otherwise what the stage reads first decides which error a learner sees
        ctx.settings.check(self.known_settings())
        ctx.say(f"[{self.scenario}] stage {name}: {stage.description}")
        first = name == self.stage_names()[0]  # the first stage starts a new run
        wait = ctx.settings.get("stage_lock_timeout")
        with (
            run_folder_lock(ctx.run_dir, f"{self.scenario} {name}", float(wait)),
            stage_progress(ctx.run_dir, name, ctx.settings.secrets(), new_run=first),
        ):
            refuse_stale_inputs(self, name, ctx)
            result = dict(stage.run(ctx) or {})
            # still under the folder's lock: the next stage reads what this one wrote
            results = ctx.state.get("results", {})
            results[name] = result
            ctx.state.update(results=results)
            record_provenance(self, name, ctx, result)
        return result

    def reset(self, ctx: StageContext) -> str:
        """Start the scenario over: run its teardown (``teardown`` where the scenario has
        one, else its cleanup stage), then remove the run directory and all it holds."""
        import shutil

        names = self.stage_names()
        final = "teardown" if "teardown" in names else self.cleanup_stage
        run_dir = ctx.run_dir  # read once: reading it makes the folder
        if final:
            self.run_stage(final, ctx)
        shutil.rmtree(run_dir, ignore_errors=True)
        return f"{self.scenario}: stopped everything and removed {run_dir}; start again"

    def run(self, ctx: StageContext, stages: list[str] | None = None) -> dict[str, Any]:
        """Run stages in order; on any failure the cleanup stage runs, then the error rises."""
        names = stages or [n for n in self.stage_names() if n != self.cleanup_stage]
        results: dict[str, Any] = {}
        with self.cleanup_on_failure(ctx):
            for name in names:
                results[name] = self.run_stage(name, ctx)
        return results

    @contextmanager
    def cleanup_on_failure(self, ctx: StageContext) -> Iterator[None]:
        """Tear down everything started so far when the block raises."""
        try:
            yield
        except BaseException:
            if self.cleanup_stage:
                try:
                    self.run_stage(self.cleanup_stage, ctx)
                except Exception as exc:  # report, but keep the original error on top
                    ctx.say(f"cleanup after failure also failed: {exc}")
            raise


_HELD: dict[Path, int] = {}  # run folders whose lock this process holds, and how deep


@contextmanager
def run_folder_lock(run_dir: Path, stage: str, timeout: float) -> Iterator[None]:
    """One stage at a time in a run folder, across processes: a second one waits up to
    ``timeout`` seconds, then refuses with one line naming the holder. The kernel drops the
    lock when its process dies, so a killed stage never blocks the next. Re-entrant in one
    process; a folder nobody can write needs no lock (cleanup still runs there)."""
    import fcntl
    import os

    from mlops_helpers.errors import WaitTimeout
    from mlops_helpers.waiting import wait_until

    key = Path(run_dir).resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path = key / ".stage.lock"
    try:
        key.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115  (held for the whole stage)
    except OSError:
        yield  # read-only: no stage can change this folder, so none can collide
        return

    def taken() -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    with handle:
        if not taken():
            handle.seek(0)
            holder = handle.read().strip() or "another stage"
            try:
                wait_until(
                    taken,
                    what=f"{holder} to finish in {key}",
                    timeout=max(timeout, 0.01),
                    interval=0.1,
                    describe=lambda free: "free" if free else f"{holder} is running",
                )
            except WaitTimeout:
                raise StageError(
                    f"{holder} is running in {key} (waited {timeout:g} s): one stage at a "
                    f"time per run folder; wait for it or use another run_root"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{stage} (pid {os.getpid()})")
        handle.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(handle, fcntl.LOCK_UN)


def cleanup_stage(ctx: StageContext, forget: tuple[str, ...] = ()) -> dict[str, Any]:
    """The standard cleanup: release every tracked resource, report failures, then drop the
    state keys in ``forget`` (what pointed at the released resources)."""
    try:
        report = ctx.tracker.cleanup(log=ctx.say)
    except CorruptFileError as exc:  # stop what the state still names, then say which file
        stopped = _stop_servers_named_in(ctx.state.path)
        raise CorruptFileError(f"{exc}; stopped {stopped} server(s) state.json names") from None
    report.raise_for_failures()
    try:
        for key in forget:
            ctx.state.pop(key)
    except OSError as exc:
        raise StageError(
            f"everything is released, but {ctx.state.path} cannot be written ({exc.strerror})"
        ) from None
    return {"released": report.released}


def _stop_servers_named_in(state_path: Path) -> int:
    """Stop every server a state file records (a ManagedServer's dict anywhere in it)."""
    from mlops_helpers.servers import ManagedServer

    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return 0
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if {"name", "pid", "port", "log_path"} <= node.keys():
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(state)
    for server in found:
        ManagedServer.from_dict(server).stop()
    return len(found)
