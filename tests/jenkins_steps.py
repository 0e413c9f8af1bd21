"""Executing a loaded pipeline the way Jenkins does: scopes (directory, environment,
credentials), ``sh`` as its own ``sh -xe`` process (dash, as on Debian agents), the other
steps, ``when``, ``post`` and the Groovy subset of ``script`` blocks. Used by
``tests/jenkins_shaped.py``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import math
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_helpers.waiting import pause
from tests.jenkins_declarative import (
    _BINDINGS,
    POST_ORDER,
    PipelineDef,
    StageDef,
    _body,
    _calls,
    _fail,
    _timeout_seconds,
)
from tests.jenkins_groovy import (
    Assign,
    Binary,
    Block,
    Call,
    Cast,
    Closure,
    Decl,
    Elvis,
    ExprStmt,
    If,
    Index,
    ListLit,
    Literal,
    MapLit,
    MethodCall,
    Name,
    Node,
    Prop,
    Return,
    Str,
    Ternary,
    Unary,
)

MASK = "****"


def posix_sh() -> str:
    """The shell Jenkins' ``sh`` step runs on a Debian agent: ``/bin/sh`` is dash there, which
    has no ``pipefail`` (a failing command inside a pipe or ``$(...)`` feeding one is not
    seen by ``-e``). We run dash wherever it is installed, also where ``/bin/sh`` is bash,
    so a script that only works in bash fails here as it would on the agent."""
    found = shutil.which("dash") or next(
        (p for p in ("/bin/dash", "/usr/bin/dash") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError(
            "the Jenkins-shaped runner needs dash (Debian agents' /bin/sh) to run sh steps "
            "as Jenkins does: install it (apt-get install dash; .ci/run does)"
        )
    return found


# Jenkins globals a script may use that the runner does not model: refused, never guessed
_UNSUPPORTED_GLOBALS = {"currentBuild", "scm", "docker", "manager", "pipeline", "steps"}


# -- credentials ------------------------------------------------------------------------
@dataclass(frozen=True)
class UsernamePassword:
    username: str
    password: str


@dataclass(frozen=True)
class SecretFile:
    content: str | bytes
    filename: str = "secret.txt"


Credential = str | UsernamePassword | SecretFile  # a plain str is a "secret text"


# -- results ----------------------------------------------------------------------------
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


# -- run-time errors --------------------------------------------------------------------
class _StepFailed(Exception):
    """A step failed: the stage (and build) fail, post blocks still run."""


class _Aborted(Exception):
    """The build was aborted (input refused, timeout)."""


class _ReturnSignal(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


# -- Groovy values ----------------------------------------------------------------------
@dataclass
class _ClosureValue:
    closure: Closure
    scope: _Scope


@dataclass
class _Binding:
    kind: str
    credentials_id: str
    variables: dict[str, str]  # role -> variable name


class _EnvObject:
    """Groovy's ``env``: reads the scope's environment, ``env.X = v`` sets it build-wide."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope


class _ParamsObject:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params


def _truth(value: Any) -> bool:
    """Groovy truth: null, false, 0, '' and empty collections are false."""
    if isinstance(value, (_EnvObject, _ParamsObject, _ClosureValue)):
        return True
    return bool(value)


def _text(value: Any) -> str:
    """How a GString shows a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{k}:{_text(v)}" for k, v in value.items()) + "]"
    return str(value)


@dataclass
class _Scope:
    """Where a step runs: directory, environment overlay, Groovy variables, its stage."""

    build: _Build
    cwd: Path
    env: dict[str, str]
    stage: StageRecord | None
    post: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    parent_vars: _Scope | None = None
    deadline: float = 0.0
    agent: str | None = None  # the agent held here (None: no node, no workspace)

    def child(self, **changes: Any) -> _Scope:
        values = {
            "build": self.build,
            "cwd": self.cwd,
            "env": dict(self.env),
            "stage": self.stage,
            "post": self.post,
            "variables": {},
            "parent_vars": self,
            "deadline": self.deadline,
            "agent": self.agent,
        }
        values.update(changes)
        return _Scope(**values)

    def environment(self) -> dict[str, str]:
        merged = dict(self.build.env)
        merged.update(self.env)
        return merged

    def lookup_var(self, name: str) -> tuple[bool, Any]:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.variables:
                return True, scope.variables[name]
            scope = scope.parent_vars
        if name in self.build.globals:
            return True, self.build.globals[name]
        return False, None

    def set_var(self, name: str, value: Any) -> None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.variables:
                scope.variables[name] = value
                return
            scope = scope.parent_vars
        self.build.globals[name] = value  # undeclared: the script binding, as in Groovy

    def remaining(self) -> float:
        left = min(self.deadline, self.build.harness_deadline) - time.monotonic()
        if left <= 0:
            raise _Aborted("Timeout has been exceeded")
        return left


# -- the build --------------------------------------------------------------------------
class _Build:
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

    def record(self, scope: _Scope, step: str, command: str, **values: Any) -> StepRecord:
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
        scope = _Scope(self, self.workspace, {}, None, deadline=self.deadline, agent=agent)
        try:
            for name, node in self.pipeline.environment:
                self.env[name] = self.env_value(scope, node, name)
        except _StepFailed as exc:
            self.log(f"ERROR: {exc}")
            self.worsen("FAILURE")
        self.run_stages(self.pipeline.stages, scope, parent=None)
        self.run_post(self.pipeline.post, scope, self.result, stage=None)
        self.log(f"Finished: {self.result}")

    def env_value(self, scope: _Scope, node: Node, name: str) -> str:
        if isinstance(node, Call) and node.name == "credentials":
            return self.credentials_env(scope, node, name)
        return _text(Evaluator(scope).eval(node))

    def credentials_env(self, scope: _Scope, node: Call, name: str) -> str:
        """``X = credentials('id')``: secret text as X; username/password as X, X_USR, X_PSW."""
        cred_id = str(Evaluator(scope).eval(node.args[0]))
        credential = self.credential(cred_id)
        if isinstance(credential, UsernamePassword):
            self.secrets += [credential.username, credential.password]
            self.env[f"{name}_USR"] = credential.username
            self.env[f"{name}_PSW"] = credential.password
            return f"{credential.username}:{credential.password}"
        if isinstance(credential, str):
            self.secrets.append(credential)
            return credential
        raise _StepFailed(f"credentials('{cred_id}') of a file is not supported by the runner")

    def credential(self, cred_id: str) -> Credential:
        if cred_id not in self.credentials:
            raise _StepFailed(f"Could not find credentials entry with ID '{cred_id}'")
        return self.credentials[cred_id]

    def run_stages(
        self, stages: list[StageDef], scope: _Scope, parent: str | None, skip_reason: str = ""
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
                except _StepFailed as exc:
                    record.status, record.reason = "FAILURE", str(exc)
                    self.worsen("FAILURE")
                    continue
            if reason:
                record.status, record.reason = "SKIPPED", reason
                self.log(f'Stage "{stage.name}" {reason}')
                self.run_stages(stage.stages, scope, stage.name, skip_reason=reason)
                continue
            self.run_stage(stage, record, scope)

    def run_stage(self, stage: StageDef, record: StageRecord, scope: _Scope) -> None:
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
                Evaluator(stage_scope).run_block(stage.steps)
                record.status = "SUCCESS"
            else:
                self.run_stages(stage.stages, stage_scope, stage.name)
                children = [s for s in self.stages if s.parent == stage.name]
                failed = [s for s in children if s.status in {"FAILURE", "ABORTED"}]
                record.status = failed[0].status if failed else "SUCCESS"
                record.reason = failed[0].reason if failed else ""
        except _StepFailed as exc:
            record.status, record.reason = "FAILURE", str(exc)
            self.log(f"ERROR: {exc}")
            self.worsen("FAILURE")
        except _Aborted as exc:
            record.status, record.reason = "ABORTED", str(exc)
            self.log(f"Aborted: {exc}")
            self.worsen("ABORTED")
        self.run_post(
            stage.post, stage_scope.child(deadline=self.deadline), record.status, stage=record
        )

    def run_post(
        self, post: dict[str, Block], scope: _Scope, status: str, stage: StageRecord | None
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
                Evaluator(scope.child(post=condition)).run_block(post[condition])
            except _StepFailed as exc:
                self.log(f"ERROR: {exc}")
                self.worsen("FAILURE")
                if stage is not None:
                    stage.status = "FAILURE"
            except _Aborted as exc:
                self.log(f"Aborted: {exc}")
                self.worsen("ABORTED")

    # when
    def when_all(self, calls: list[Call], scope: _Scope) -> bool:
        return all(self.when_one(call, scope) for call in calls)

    def when_one(self, call: Call, scope: _Scope) -> bool:
        env = scope.environment()
        evaluator = Evaluator(scope)
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
            return _truth(evaluator.call_closure_body(_body(call)))
        inner = _calls(_body(call), call.name)
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


# -- the step and Groovy interpreter ----------------------------------------------------
class Evaluator:
    def __init__(self, scope: _Scope) -> None:
        self.scope = scope
        self.build = scope.build

    # statements
    def run_block(self, block: Block) -> Any:
        last = None
        for statement in block.statements:
            last = self.run_statement(statement)
        return last

    def run_statement(self, node: Node) -> Any:
        if isinstance(node, ExprStmt):
            return self.eval(node.expr)
        if isinstance(node, Decl):
            self.scope.variables[node.name] = None if node.value is None else self.eval(node.value)
            return None
        if isinstance(node, Assign):
            self.assign(node)
            return None
        if isinstance(node, If):
            if _truth(self.eval(node.cond)):
                return Evaluator(self.scope.child()).run_block(node.then)
            if node.other is not None:
                return Evaluator(self.scope.child()).run_block(node.other)
            return None
        if isinstance(node, Return):
            raise _ReturnSignal(None if node.value is None else self.eval(node.value))
        return self.eval(node)

    def assign(self, node: Assign) -> None:
        value = self.eval(node.value)
        target = node.target
        if isinstance(target, Name):
            self.scope.set_var(target.name, value)
        elif isinstance(target, Prop) and isinstance(self.eval(target.target), _EnvObject):
            self.build.env[target.name] = _text(value)  # env.X = ... is build-wide
        else:
            raise _fail(node, "only variables and env.NAME can be assigned")

    def call_closure_body(self, body: Block) -> Any:
        try:
            return Evaluator(self.scope.child()).run_block(body)
        except _ReturnSignal as ret:
            return ret.value

    def call_closure(self, value: _ClosureValue, args: list[Any]) -> Any:
        scope = value.scope.child(
            cwd=self.scope.cwd,
            env=dict(self.scope.env),
            stage=self.scope.stage,
            post=self.scope.post,
            deadline=self.scope.deadline,
        )
        params = value.closure.params or (["it"] if args else [])
        for name, arg in zip(params, args, strict=False):
            scope.variables[name] = arg
        try:
            return Evaluator(scope).run_block(value.closure.body)
        except _ReturnSignal as ret:
            return ret.value

    # expressions
    def eval(self, node: Node) -> Any:
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:
            raise _fail(node, f"{type(node).__name__} is not supported by the runner")
        return method(node)

    def _eval_Literal(self, node: Literal) -> Any:
        return node.value

    def _eval_Str(self, node: Str) -> str:
        return "".join(p if isinstance(p, str) else _text(self.eval(p)) for p in node.parts)

    def _eval_ListLit(self, node: ListLit) -> list[Any]:
        return [self.eval(item) for item in node.items]

    def _eval_MapLit(self, node: MapLit) -> dict[str, Any]:
        return {k: self.eval(v) for k, v in node.items.items()}

    def _eval_Closure(self, node: Closure) -> _ClosureValue:
        return _ClosureValue(node, self.scope)

    def _eval_Name(self, node: Name) -> Any:
        found, value = self.scope.lookup_var(node.name)
        if found:
            return value
        if node.name == "env":
            return _EnvObject(self.scope)
        if node.name == "params":
            return _ParamsObject(self.build.params)
        if node.name in _UNSUPPORTED_GLOBALS:
            raise _fail(node, f"'{node.name}' is not supported by the runner")
        env = self.scope.environment()
        if node.name in env:  # Jenkins resolves environment variables as properties
            return env[node.name]
        raise _StepFailed(
            f"groovy.lang.MissingPropertyException: No such property: "
            f"{node.name} (line {node.line})"
        )

    def _eval_Prop(self, node: Prop) -> Any:
        target = self.eval(node.target)
        if target is None and node.safe:
            return None
        if isinstance(target, _EnvObject):
            return target.scope.environment().get(node.name)
        if isinstance(target, _ParamsObject):
            return target.params.get(node.name)
        if isinstance(target, dict):
            return target.get(node.name)
        if target is None:
            raise _StepFailed(
                f"java.lang.NullPointerException: Cannot get property "
                f"'{node.name}' on null object (line {node.line})"
            )
        raise _fail(
            node,
            f"property '{node.name}' of a {type(target).__name__} is not supported by the runner",
        )

    def _eval_Index(self, node: Index) -> Any:
        target, index = self.eval(node.target), self.eval(node.index)
        if isinstance(target, list) and isinstance(index, int):
            return target[index] if -len(target) <= index < len(target) else None
        if isinstance(target, dict):
            return target.get(index)
        if isinstance(target, str) and isinstance(index, int):
            return target[index]
        raise _StepFailed(
            f"cannot index {_text(target)!r} with {_text(index)!r} (line {node.line})"
        )

    def _eval_Unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        return (not _truth(value)) if node.op == "!" else -value

    def _eval_Ternary(self, node: Ternary) -> Any:
        return self.eval(node.then) if _truth(self.eval(node.cond)) else self.eval(node.other)

    def _eval_Elvis(self, node: Elvis) -> Any:
        value = self.eval(node.value)
        return value if _truth(value) else self.eval(node.fallback)

    def _eval_Cast(self, node: Cast) -> Any:
        value = self.eval(node.value)
        base = node.type_name.split("<")[0]
        if base in {"List", "ArrayList", "Collection"}:
            return list(value) if value is not None else None
        if base == "String":
            return None if value is None else _text(value)
        if base in {"Integer", "int", "Long", "long"}:
            return int(value)
        if base in {"Double", "double", "Float", "BigDecimal"}:
            return float(value)
        raise _fail(node, f"'as {node.type_name}' is not supported by the runner")

    def _eval_Binary(self, node: Binary) -> Any:
        if node.op == "&&":
            return _truth(self.eval(node.left)) and _truth(self.eval(node.right))
        if node.op == "||":
            return _truth(self.eval(node.left)) or _truth(self.eval(node.right))
        left, right = self.eval(node.left), self.eval(node.right)
        try:
            if node.op == "==":
                return left == right
            if node.op == "!=":
                return left != right
            if node.op == "in":
                return left in right
            if node.op == "+" and (isinstance(left, str) or isinstance(right, str)):
                return _text(left) + _text(right)
            operations: dict[str, Callable[[Any, Any], Any]] = {
                "<": lambda a, b: a < b,
                ">": lambda a, b: a > b,
                "<=": lambda a, b: a <= b,
                ">=": lambda a, b: a >= b,
                "+": lambda a, b: a + b,
                "-": lambda a, b: a - b,
                "*": lambda a, b: a * b,
                "/": lambda a, b: a / b,
                "%": lambda a, b: a % b,
            }
            return operations[node.op](left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise _StepFailed(
                f"cannot apply '{node.op}' to {_text(left)!r} and "
                f"{_text(right)!r} (line {node.line}): {exc}"
            ) from exc

    def _eval_MethodCall(self, node: MethodCall) -> Any:
        target = self.eval(node.target)
        args = [self.eval(a) for a in node.args]
        if node.closure is not None:
            args.append(_ClosureValue(node.closure, self.scope))
        if target is None:
            raise _StepFailed(
                f"java.lang.NullPointerException: Cannot invoke method "
                f"{node.name}() on null object (line {node.line})"
            )
        return _methods(self, target, node.name, args, node)

    def _eval_Call(self, node: Call) -> Any:
        if node.name in _BINDINGS:
            return self.binding(node)
        step = getattr(self, f"step_{node.name}", None)
        if step is None:
            raise _fail(node, f"step '{node.name}' is not supported by the runner")
        return step(node)

    # argument helpers
    def named(self, node: Call) -> dict[str, Any]:
        return {k: self.eval(v) for k, v in node.named.items()}

    def first_arg(self, node: Call, key: str) -> Any:
        named = self.named(node)
        if key in named:
            return named[key]
        if node.args:
            return self.eval(node.args[0])
        raise _fail(node, f"'{node.name}' needs {key}")

    def closure_body(self, node: Call) -> Block:
        return _body(node)

    # steps
    def step_echo(self, node: Call) -> None:
        message = _text(self.first_arg(node, "message"))
        self.build.log(message)
        self.build.record(self.scope, "echo", message, output=message)

    def step_error(self, node: Call) -> None:
        message = _text(self.first_arg(node, "message"))
        self.build.record(self.scope, "error", message, output=message)
        raise _StepFailed(message)

    def step_script(self, node: Call) -> Any:
        return self.call_closure_body(_body(node))

    def step_dir(self, node: Call) -> Any:
        self.need_workspace(node)
        path = Path(_text(self.first_arg(node, "path")))
        where = path if path.is_absolute() else self.scope.cwd / path
        where.mkdir(parents=True, exist_ok=True)
        return Evaluator(self.scope.child(cwd=where)).call_closure_body(_body(node))

    def step_withEnv(self, node: Call) -> Any:
        overrides = self.first_arg(node, "overrides")
        child = self.scope.child()
        for entry in overrides:
            name, _, value = _text(entry).partition("=")
            if "+" in name:  # PATH+EXTRA=/dir prepends, as Jenkins does
                base = name.split("+")[0]
                current = child.environment().get(base, "")
                child.env[base] = f"{value}{os.pathsep}{current}" if current else value
            else:
                child.env[name] = value
        return Evaluator(child).call_closure_body(_body(node))

    def binding(self, node: Call) -> _Binding:
        named = {k: _text(v) for k, v in self.named(node).items()}
        roles = {
            "usernamePassword": ("usernameVariable", "passwordVariable"),
            "string": ("variable",),
            "file": ("variable",),
        }[node.name]
        if "credentialsId" not in named or any(r not in named for r in roles):
            raise _fail(node, f"{node.name}(...) needs credentialsId and {', '.join(roles)}")
        return _Binding(node.name, named["credentialsId"], {r: named[r] for r in roles})

    def step_withCredentials(self, node: Call) -> Any:
        bindings = self.first_arg(node, "bindings")
        if not isinstance(bindings, list) or not all(isinstance(b, _Binding) for b in bindings):
            raise _fail(node, "withCredentials needs a list of usernamePassword/string/file")
        child = self.scope.child()
        files: list[Path] = []
        for binding in bindings:
            credential = self.build.credential(binding.credentials_id)
            if binding.kind == "usernamePassword":
                if not isinstance(credential, UsernamePassword):
                    raise _StepFailed(
                        f"credentials '{binding.credentials_id}' are not a username with password"
                    )
                child.env[binding.variables["usernameVariable"]] = credential.username
                child.env[binding.variables["passwordVariable"]] = credential.password
                self.build.secrets += [credential.username, credential.password]
            elif binding.kind == "string":
                if not isinstance(credential, str):
                    raise _StepFailed(
                        f"credentials '{binding.credentials_id}' are not a secret text"
                    )
                child.env[binding.variables["variable"]] = credential
                self.build.secrets.append(credential)
            else:
                if not isinstance(credential, SecretFile):
                    raise _StepFailed(
                        f"credentials '{binding.credentials_id}' are not a secret file"
                    )
                folder = self.build.tmp / f"secretFiles/{uuid.uuid4()}"
                folder.mkdir(parents=True)
                path = folder / credential.filename
                data = credential.content
                path.write_bytes(data.encode() if isinstance(data, str) else data)
                path.chmod(0o400)
                files.append(folder)
                child.env[binding.variables["variable"]] = str(path)
                if isinstance(data, str):
                    self.build.secrets.append(data)
        try:
            return Evaluator(child).call_closure_body(_body(node))
        finally:
            for folder in files:  # a secret file exists only inside its block
                shutil.rmtree(folder, ignore_errors=True)

    def need_workspace(self, node: Call) -> None:
        """Steps that touch files need a node: without an agent Jenkins has no workspace."""
        if self.scope.agent is None:
            raise _StepFailed(
                f"line {node.line}: {node.name}: Required context class hudson.FilePath is "
                f"missing; Perhaps you forgot to surround the code with a step that provides "
                f"this, such as: node (no agent holds this stage)"
            )

    def step_sh(self, node: Call) -> Any:
        self.need_workspace(node)
        named = self.named(node)
        script = _text(named["script"] if "script" in named else self.first_arg(node, "script"))
        return_stdout = _truth(named.get("returnStdout"))
        return_status = _truth(named.get("returnStatus"))
        number = next(self.build.counter)
        folder = self.build.tmp / f"durable-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        script_file = folder / "script.sh"
        script_file.write_text(script)
        script_file.chmod(0o700)
        # Jenkins: a script with its own #! line runs as it says; anything else is `sh -xe`
        command = (
            [str(script_file)] if script.startswith("#!") else [posix_sh(), "-xe", str(script_file)]
        )
        log_path, out_path = folder / "jenkins-log.txt", folder / "output.txt"
        self.build.log("[Pipeline] sh")
        with open(log_path, "wb") as log, open(out_path, "wb") as out:
            process = subprocess.Popen(
                command,
                cwd=self.scope.cwd,
                env=self.scope.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out if return_stdout else log,
                stderr=log,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=self.scope.remaining())
            except subprocess.TimeoutExpired:
                _kill_group(process)
                self.build.record(
                    self.scope,
                    "sh",
                    script,
                    exit_code=None,
                    output=log_path.read_text(errors="replace"),
                )
                raise _Aborted("Timeout has been exceeded") from None
        output = log_path.read_text(errors="replace")
        stdout = out_path.read_text(errors="replace")
        self.build.log(output.rstrip("\n"))
        self.build.record(
            self.scope,
            "sh",
            script,
            exit_code=code,
            output=output + (self.build.mask(stdout) if return_stdout else ""),
        )
        if code != 0 and not return_status:
            raise _StepFailed(f"script returned exit code {code}")
        if return_status:
            return code
        return stdout if return_stdout else None

    def step_archiveArtifacts(self, node: Call) -> None:
        self.need_workspace(node)
        named = self.named(node)
        patterns = _text(named.get("artifacts", self.first_arg(node, "artifacts")))
        found = _ant_glob(self.build.workspace, patterns)
        self.build.record(self.scope, "archiveArtifacts", patterns, output="\n".join(found))
        if not found and not _truth(named.get("allowEmptyArchive")):
            raise _StepFailed(f'No artifacts found that match the file pattern "{patterns}"')
        self.build.archived += found

    def step_junit(self, node: Call) -> None:
        self.need_workspace(node)
        named = self.named(node)
        patterns = _text(named.get("testResults", self.first_arg(node, "testResults")))
        found = _ant_glob(self.build.workspace, patterns)
        self.build.record(self.scope, "junit", patterns, output="\n".join(found))
        if not found and not _truth(named.get("allowEmptyResults")):
            raise _StepFailed(f'No test report files were found matching "{patterns}"')

    def step_input(self, node: Call) -> Any:
        named = self.named(node)
        if "parameters" in named:
            raise _fail(node, "input with parameters is not supported by the runner")
        message = _text(named.get("message", self.first_arg(node, "message")))
        approver = self.build.approver
        # submitter: comma-separated users or groups; anyone who can build may answer without
        allowed = [s.strip() for s in _text(named.get("submitter", "")).split(",") if s.strip()]
        may = approver is not None and (
            not allowed or approver in allowed or set(self.build.approver_groups) & set(allowed)
        )
        if approver is None:
            outcome = "Rejected"
        elif may:
            outcome = f"Approved by {approver}"
        else:
            outcome = f"{approver} may not approve (submitter: {', '.join(allowed)})"
        self.build.record(
            self.scope,
            "input",
            message,
            output=outcome,
            agent=self.scope.agent,
            timeout=self.scope.deadline - time.monotonic(),  # the Jenkinsfile's, not ours
        )
        if approver is None:
            raise _Aborted(f"input '{message}' was rejected")
        if not may:
            raise _Aborted(f"input '{message}': {outcome}; Timeout has been exceeded")
        return approver if "submitterParameter" in named else None

    def step_timeout(self, node: Call) -> Any:
        seconds = _timeout_seconds(
            Call(
                "timeout",
                node.args,
                {k: Literal(v, line=node.line) for k, v in self.named(node).items()},
                line=node.line,
            )
        )
        deadline = min(self.scope.deadline, time.monotonic() + seconds)
        return Evaluator(self.scope.child(deadline=deadline)).call_closure_body(_body(node))

    def step_waitUntil(self, node: Call) -> Any:
        interval = float(self.named(node).get("initialRecurrencePeriod", 250)) / 1000
        body = _body(node)
        while True:  # bounded by the enclosing timeout (the build always has one)
            if _truth(self.call_closure_body(body)):
                return True
            pause(min(interval, self.scope.remaining()))
            self.scope.remaining()
            interval = min(interval * 1.2, 15.0)  # Jenkins backs off the same way

    def step_stash(self, node: Call) -> None:
        """Files kept by the controller for a later stage on another agent (``unstash``)."""
        self.need_workspace(node)
        named = self.named(node)
        name = _text(named.get("name", self.first_arg(node, "name")))
        includes = _text(named.get("includes", "**"))
        found = _ant_glob(self.scope.cwd, includes)
        if not found and not _truth(named.get("allowEmpty")):
            raise _StepFailed(f"No files included in stash '{name}'")
        folder = self.build.tmp / "stashes" / name
        shutil.rmtree(folder, ignore_errors=True)
        for relative in found:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.scope.cwd / relative, folder / relative, follow_symlinks=False)
        folder.mkdir(parents=True, exist_ok=True)
        self.build.stashes[name] = folder
        self.build.record(self.scope, "stash", name, output="\n".join(found))

    def step_unstash(self, node: Call) -> None:
        self.need_workspace(node)
        name = _text(self.first_arg(node, "name"))
        if name not in self.build.stashes:
            raise _StepFailed(f"No such saved stash '{name}'")
        shutil.copytree(self.build.stashes[name], self.scope.cwd, dirs_exist_ok=True, symlinks=True)
        self.build.record(self.scope, "unstash", name)

    def step_writeFile(self, node: Call) -> None:
        self.need_workspace(node)
        named = self.named(node)
        path = self.scope.cwd / _text(named["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(named["text"]))
        self.build.record(self.scope, "writeFile", _text(named["file"]))

    def step_readFile(self, node: Call) -> str:
        self.need_workspace(node)
        path = self.scope.cwd / _text(self.first_arg(node, "file"))
        if not path.is_file():
            raise _StepFailed(f"java.nio.file.NoSuchFileException: {path}")
        return path.read_text()

    def step_fileExists(self, node: Call) -> bool:
        self.need_workspace(node)
        return (self.scope.cwd / _text(self.first_arg(node, "file"))).exists()

    def step_deleteDir(self, node: Call) -> None:
        self.need_workspace(node)
        shutil.rmtree(self.scope.cwd, ignore_errors=True)
        self.build.record(self.scope, "deleteDir", str(self.scope.cwd))


def _java_split(text: str, regex: str) -> list[str]:
    parts = re.split(regex, text)
    while parts and parts[-1] == "":  # Java drops trailing empty strings
        parts.pop()
    return parts


def _methods(ev: Evaluator, target: Any, name: str, args: list[Any], node: Node) -> Any:
    """The String, List and Map methods our Jenkinsfiles use."""
    if isinstance(target, str):
        string_methods: dict[str, Callable[..., Any]] = {
            "trim": lambda: target.strip(),
            "split": lambda r=r"\s+": _java_split(target, r),
            "tokenize": lambda sep=None: target.split(sep) if sep else target.split(),
            "toDouble": lambda: float(target),
            "toInteger": lambda: int(target),
            "isEmpty": lambda: target == "",
            "contains": lambda s: s in target,
            "startsWith": lambda s: target.startswith(s),
            "endsWith": lambda s: target.endswith(s),
            "toLowerCase": lambda: target.lower(),
            "toUpperCase": lambda: target.upper(),
            "replace": lambda a, b: target.replace(a, b),
            "size": lambda: len(target),
            "length": lambda: len(target),
            "toString": lambda: target,
        }
        method = string_methods.get(name)
    elif isinstance(target, list):

        def run(closure: _ClosureValue, item: Any) -> Any:
            return ev.call_closure(closure, [item])

        def each(closure: _ClosureValue) -> list[Any]:
            for item in target:
                run(closure, item)
            return target

        list_methods: dict[str, Callable[..., Any]] = {
            "size": lambda: len(target),
            "isEmpty": lambda: not target,
            "drop": lambda n: target[n:],
            "take": lambda n: target[:n],
            "first": lambda: target[0],
            "last": lambda: target[-1],
            "contains": lambda x: x in target,
            "join": lambda sep="": sep.join(_text(x) for x in target),
            "each": each,
            "collect": lambda c: [run(c, x) for x in target],
            "findAll": lambda c: [x for x in target if _truth(run(c, x))],
            "find": lambda c: next((x for x in target if _truth(run(c, x))), None),
            "any": lambda c: any(_truth(run(c, x)) for x in target),
            "every": lambda c: all(_truth(run(c, x)) for x in target),
        }
        method = list_methods.get(name)
    elif isinstance(target, dict):
        map_methods: dict[str, Callable[..., Any]] = {
            "get": lambda k: target.get(k),
            "containsKey": lambda k: k in target,
            "size": lambda: len(target),
            "isEmpty": lambda: not target,
        }
        method = map_methods.get(name)
    elif isinstance(target, (int, float)) and name in {"toString", "toInteger", "toDouble"}:
        method = {
            "toString": lambda: _text(target),
            "toInteger": lambda: int(target),
            "toDouble": lambda: float(target),
        }[name]
    else:
        method = None
    if method is None:
        raise _fail(
            node, f"method {name}() of a {type(target).__name__} is not supported by the runner"
        )
    try:
        return method(*args)
    except (ValueError, IndexError, TypeError) as exc:
        raise _StepFailed(
            f"{name}() failed on {_text(target)!r} (line {node.line}): {exc}"
        ) from exc


def _ant_glob(root: Path, patterns: str) -> list[str]:
    """Files matching Ant patterns (comma separated, ``**`` for any folders), relative."""
    found: set[str] = set()
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        if pattern.endswith("**"):  # Ant: every file below; pathlib's ** alone is folders
            pattern += "/*"
        for path in root.glob(pattern):
            if path.is_file():
                found.add(path.relative_to(root).as_posix())
    return sorted(found)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
