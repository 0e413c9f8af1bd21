"""What a build records: each step, each stage and the build's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StepRecord:
    """One step as Jenkins' log shows it; ``command`` and ``output`` are masked."""

    stage: str | None
    step: str  # sh, echo, error, archiveArtifacts, junit, input, writeFile, ...
    command: str
    exit_code: int | None = None
    output: str = ""
    cwd: str = ""
    post: str | None = None  # the post condition this step ran under, if any
    agent: str | None = None  # the agent held while it ran (None: no agent, no workspace)
    timeout: float | None = None  # input: how long it may wait (the tightest timeout around it)


@dataclass
class StageRecord:
    name: str
    status: str = "NOT_BUILT"  # SUCCESS, FAILURE, ABORTED, SKIPPED
    reason: str = ""  # why it was skipped or failed
    steps: list[StepRecord] = field(default_factory=list)
    post_run: list[str] = field(default_factory=list)
    parent: str | None = None
    agent: str | None = None  # the agent it held (None: none)


@dataclass
class BuildResult:
    """One build: its result, every stage (nested ones name their ``parent``) in order, every
    step (``sh`` with command, exit code and masked output; echo, input, archiveArtifacts ...),
    the pipeline-level post conditions that ran, the masked console log, the final build-wide
    environment (masked), archived paths and what the ProcessTreeKiller had to kill."""

    result: str  # SUCCESS, FAILURE, ABORTED
    stages: list[StageRecord]
    post_run: list[str]
    steps: list[StepRecord]
    log: str
    workspace: Path
    env: dict[str, str]
    archived: list[str]
    killed_processes: list[str]

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def status(self, name: str) -> str:
        return self.stage(name).status

    def statuses(self) -> dict[str, str]:
        return {s.name: s.status for s in self.stages}

    def sh_steps(self, stage: str | None = None) -> list[StepRecord]:
        return [s for s in self.steps if s.step == "sh" and (stage is None or s.stage == stage)]

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"
