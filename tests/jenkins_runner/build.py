"""One build of a loaded pipeline, as Jenkins runs a declarative pipeline: the
``environment`` directives (with ``credentials()``), stages in order (a failure skips the
rest, ``when`` decides, nested ``stages``, a stage's own agent and timeout), ``post``
conditions in Jenkins' order, the build result, the log and the masking of every secret.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.jenkins_runner.credentials import MASK, Credential, UsernamePassword
from tests.jenkins_runner.declarative import (
    POST_ORDER,
    PipelineDef,
    StageDef,
    closure_body,
    directive_calls,
)
from tests.jenkins_runner.evaluate import BuildAborted, Scope, StepFailed, groovy_truth, gstring
from tests.jenkins_runner.groovy import Block, Call, Node
from tests.jenkins_runner.records import StageRecord, StepRecord
from tests.jenkins_runner.steps import StepEvaluator


class Build:
    """One run of a pipeline: its environment, secrets and records, and the order stages
    and post blocks run in."""

    def __init__(
        self,
        pipeline: PipelineDef,
        workspace: Path,
        env: dict[str, str],
        params: dict[str, Any],
        credentials: Mapping[str, Credential],
        approver: str | None,
        timeout: float,
        approver_groups: tuple[str, ...] = (),
    ) -> None:
        self.pipeline = pipeline
        self.approver_groups = approver_groups
        self.workspace = workspace
        self.env = env
        self.params = params
        self.credentials = dict(credentials)
        self.approver = approver
        # the Jenkinsfile's own timeouts (none: no deadline) and, apart, the harness' bound
        now = time.monotonic()
        self.deadline = now + pipeline.timeout if pipeline.timeout else math.inf
        self.harness_deadline = now + timeout
        self.secrets: list[str] = []
        self.globals: dict[str, Any] = {}
        self.steps: list[StepRecord] = []
        self.stages: list[StageRecord] = []
        self.archived: list[str] = []
        self.log_lines: list[str] = []
        self.result = "SUCCESS"
        self.counter = itertools.count(1)
        self.tmp = workspace.parent / f"{workspace.name}@tmp"
        self.post_run: list[str] = []
        self.stashes: dict[str, Path] = {}

    # logging and masking
    def mask(self, text: str) -> str:
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            if secret:
                text = text.replace(secret, MASK)
        return text

    def log(self, line: str) -> None:
        self.log_lines.append(self.mask(line))

    def record(self, scope: Scope, step: str, command: str, **values: Any) -> StepRecord:
        record = StepRecord(
            scope.stage.name if scope.stage else None,
            step,
            self.mask(command),
            cwd=str(scope.cwd),
            post=scope.post,
            **values,
        )
        record.output = self.mask(record.output)
        self.steps.append(record)
        if scope.stage is not None:
            scope.stage.steps.append(record)
        return record

    def worsen(self, result: str) -> None:
        order = ["SUCCESS", "UNSTABLE", "FAILURE", "ABORTED"]
        if order.index(result) > order.index(self.result):
            self.result = result

    # the whole build
    def run(self) -> None:
        agent = self.pipeline.agent.describe() if self.pipeline.agent else "any"
        scope = Scope(self, self.workspace, {}, None, deadline=self.deadline, agent=agent)
        try:
            for name, node in self.pipeline.environment:
                self.env[name] = self.env_value(scope, node, name)
        except StepFailed as exc:
            self.log(f"ERROR: {exc}")
            self.worsen("FAILURE")
        self.run_stages(self.pipeline.stages, scope, parent=None)
        self.run_post(self.pipeline.post, scope, self.result, stage=None)
        self.log(f"Finished: {self.result}")

    def env_value(self, scope: Scope, node: Node, name: str) -> str:
        if isinstance(node, Call) and node.name == "credentials":
            return self.credentials_env(scope, node, name)
        return gstring(StepEvaluator(scope).eval(node))

    def credentials_env(self, scope: Scope, node: Call, name: str) -> str:
        """``X = credentials('id')``: secret text as X; username/password as X, X_USR, X_PSW."""
        cred_id = str(StepEvaluator(scope).eval(node.args[0]))
        credential = self.credential(cred_id)
        if isinstance(credential, UsernamePassword):
            self.secrets += [credential.username, credential.password]
            self.env[f"{name}_USR"] = credential.username
            self.env[f"{name}_PSW"] = credential.password
            return f"{credential.username}:{credential.password}"
        if isinstance(credential, str):
            self.secrets.append(credential)
            return credential
        raise StepFailed(f"credentials('{cred_id}') of a file is not supported by the runner")

    def credential(self, cred_id: str) -> Credential:
        if cred_id not in self.credentials:
            raise StepFailed(f"Could not find credentials entry with ID '{cred_id}'")
        return self.credentials[cred_id]

    def run_stages(
        self, stages: list[StageDef], scope: Scope, parent: str | None, skip_reason: str = ""
    ) -> None:
        for stage in stages:
            record = StageRecord(stage.name, parent=parent)
            self.stages.append(record)
            reason = skip_reason or (
                "skipped due to earlier failure(s)" if self.result != "SUCCESS" else ""
            )
            if not reason:
                stage_scope = scope.child(stage=record)
                try:
                    if stage.when and not self.when_all(stage.when, stage_scope):
                        reason = "skipped due to when conditional"
                except StepFailed as exc:
                    record.status, record.reason = "FAILURE", str(exc)
                    self.worsen("FAILURE")
                    continue
            if reason:
                record.status, record.reason = "SKIPPED", reason
                self.log(f'Stage "{stage.name}" {reason}')
                self.run_stages(stage.stages, scope, stage.name, skip_reason=reason)
                continue
            self.run_stage(stage, record, scope)

    def run_stage(self, stage: StageDef, record: StageRecord, scope: Scope) -> None:
        self.log(f"[Pipeline] stage ({stage.name})")
        deadline = scope.deadline
        if stage.timeout is not None:
            deadline = min(deadline, time.monotonic() + stage.timeout)
        # a stage's own agent is a node of its own; `agent none` (or none given) keeps what
        # encloses it: a pipeline-level agent holds its node through every stage
        own = stage.agent.describe() if stage.agent else None
        stage_scope = scope.child(stage=record, deadline=deadline, agent=own or scope.agent)
        record.agent = stage_scope.agent
        try:
            for name, node in stage.environment:
                stage_scope.env[name] = self.env_value(stage_scope, node, name)
            if stage.steps is not None:
                StepEvaluator(stage_scope).run_block(stage.steps)
                record.status = "SUCCESS"
            else:
                self.run_stages(stage.stages, stage_scope, stage.name)
                children = [s for s in self.stages if s.parent == stage.name]
                failed = [s for s in children if s.status in {"FAILURE", "ABORTED"}]
                record.status = failed[0].status if failed else "SUCCESS"
                record.reason = failed[0].reason if failed else ""
        except StepFailed as exc:
            record.status, record.reason = "FAILURE", str(exc)
            self.log(f"ERROR: {exc}")
            self.worsen("FAILURE")
        except BuildAborted as exc:
            record.status, record.reason = "ABORTED", str(exc)
            self.log(f"Aborted: {exc}")
            self.worsen("ABORTED")
        self.run_post(
            stage.post, stage_scope.child(deadline=self.deadline), record.status, stage=record
        )

    def run_post(
        self, post: dict[str, Block], scope: Scope, status: str, stage: StageRecord | None
    ) -> None:
        applies = {
            "always": True,
            "aborted": status == "ABORTED",
            "failure": status == "FAILURE",
            "success": status == "SUCCESS",
            "unstable": status == "UNSTABLE",
            "unsuccessful": status != "SUCCESS",
            "cleanup": True,
        }
        for condition in POST_ORDER:
            if condition not in post or not applies[condition]:
                continue
            (stage.post_run if stage else self.post_run).append(condition)
            self.log(f"[Pipeline] {{ (Declarative: Post Actions {condition})")
            try:
                StepEvaluator(scope.child(post=condition)).run_block(post[condition])
            except StepFailed as exc:
                self.log(f"ERROR: {exc}")
                self.worsen("FAILURE")
                if stage is not None:
                    stage.status = "FAILURE"
            except BuildAborted as exc:
                self.log(f"Aborted: {exc}")
                self.worsen("ABORTED")

    # when
    def when_all(self, calls: list[Call], scope: Scope) -> bool:
        return all(self.when_one(call, scope) for call in calls)

    def when_one(self, call: Call, scope: Scope) -> bool:
        env = scope.environment()
        evaluator = StepEvaluator(scope)
        named = {k: evaluator.eval(v) for k, v in call.named.items()}
        args = [evaluator.eval(a) for a in call.args]
        if call.name in {"beforeAgent", "beforeInput", "beforeOptions"}:
            return True
        if call.name == "branch":
            pattern = named.get("pattern", args[0] if args else None)
            return _matches(
                env.get("BRANCH_NAME", ""), str(pattern), str(named.get("comparator", "GLOB"))
            )
        if call.name == "changeRequest":
            if not env.get("CHANGE_ID"):
                return False
            comparator = str(named.pop("comparator", "GLOB"))
            return all(
                _matches(env.get(f"CHANGE_{k.upper()}", ""), str(v), comparator)
                for k, v in named.items()
            )
        if call.name in {"buildingTag", "tag"}:
            return False  # these builds are never of a tag
        if call.name == "environment":
            return env.get(str(named.get("name"))) == str(named.get("value"))
        if call.name == "expression":
            return groovy_truth(evaluator.call_closure_body(closure_body(call)))
        inner = directive_calls(closure_body(call), call.name)
        if call.name == "not":
            return not self.when_all(inner, scope)
        if call.name == "allOf":
            return all(self.when_one(c, scope) for c in inner)
        return any(self.when_one(c, scope) for c in inner)  # anyOf


def _matches(value: str, pattern: str, comparator: str) -> bool:
    if comparator == "EQUALS":
        return value == pattern
    if comparator == "REGEXP":
        return re.fullmatch(pattern, value) is not None
    return fnmatch.fnmatchcase(value, pattern)
