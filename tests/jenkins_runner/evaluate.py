"""Evaluating the Groovy subset of ``script`` blocks, ``when { expression }`` and
``environment`` values: scopes (directory, environment overlay, variables, deadline), Groovy
truth and GString text, the ``env`` and ``params`` globals, and the String, List and Map
methods our Jenkinsfiles call. Steps are not here: ``steps.StepEvaluator`` adds them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.jenkins_runner.declarative import error_at
from tests.jenkins_runner.groovy import (
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
from tests.jenkins_runner.records import StageRecord

if TYPE_CHECKING:
    from tests.jenkins_runner.build import Build

# Jenkins globals a script may use that the runner does not model: refused, never guessed
_UNSUPPORTED_GLOBALS = {"currentBuild", "scm", "docker", "manager", "pipeline", "steps"}


# -- run-time errors --------------------------------------------------------------------
class StepFailed(Exception):
    """A step failed: the stage (and build) fail, post blocks still run."""


class BuildAborted(Exception):
    """The build was aborted (input refused, timeout)."""


class _ReturnSignal(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


# -- Groovy values ----------------------------------------------------------------------
@dataclass
class _ClosureValue:
    closure: Closure
    scope: Scope


class _EnvObject:
    """Groovy's ``env``: reads the scope's environment, ``env.X = v`` sets it build-wide."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope


class _ParamsObject:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params


def groovy_truth(value: Any) -> bool:
    """Groovy truth: null, false, 0, '' and empty collections are false."""
    if isinstance(value, (_EnvObject, _ParamsObject, _ClosureValue)):
        return True
    return bool(value)


def gstring(value: Any) -> str:
    """How a GString shows a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(gstring(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{k}:{gstring(v)}" for k, v in value.items()) + "]"
    return str(value)


@dataclass
class Scope:
    """Where a step runs: directory, environment overlay, Groovy variables, its stage."""

    build: Build
    cwd: Path
    env: dict[str, str]
    stage: StageRecord | None
    post: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    parent_vars: Scope | None = None
    deadline: float = 0.0
    agent: str | None = None  # the agent held here (None: no node, no workspace)

    def child(self, **changes: Any) -> Scope:
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
        return Scope(**values)

    def environment(self) -> dict[str, str]:
        merged = dict(self.build.env)
        merged.update(self.env)
        return merged

    def lookup_var(self, name: str) -> tuple[bool, Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.variables:
                return True, scope.variables[name]
            scope = scope.parent_vars
        if name in self.build.globals:
            return True, self.build.globals[name]
        return False, None

    def set_var(self, name: str, value: Any) -> None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.variables:
                scope.variables[name] = value
                return
            scope = scope.parent_vars
        self.build.globals[name] = value  # undeclared: the script binding, as in Groovy

    def remaining(self) -> float:
        left = min(self.deadline, self.build.harness_deadline) - time.monotonic()
        if left <= 0:
            raise BuildAborted("Timeout has been exceeded")
        return left


# -- the Groovy interpreter ------------------------------------------------------------
class Evaluator:
    def __init__(self, scope: Scope) -> None:
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
            if groovy_truth(self.eval(node.cond)):
                return type(self)(self.scope.child()).run_block(node.then)
            if node.other is not None:
                return type(self)(self.scope.child()).run_block(node.other)
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
            self.build.env[target.name] = gstring(value)  # env.X = ... is build-wide
        else:
            raise error_at(node, "only variables and env.NAME can be assigned")

    def call_closure_body(self, body: Block) -> Any:
        try:
            return type(self)(self.scope.child()).run_block(body)
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
            return type(self)(scope).run_block(value.closure.body)
        except _ReturnSignal as ret:
            return ret.value

    # expressions
    def eval(self, node: Node) -> Any:
        method = getattr(self, f"_eval_{type(node).__name__}", None)
        if method is None:
            raise error_at(node, f"{type(node).__name__} is not supported by the runner")
        return method(node)

    def _eval_Literal(self, node: Literal) -> Any:
        return node.value

    def _eval_Str(self, node: Str) -> str:
        return "".join(p if isinstance(p, str) else gstring(self.eval(p)) for p in node.parts)

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
            raise error_at(node, f"'{node.name}' is not supported by the runner")
        env = self.scope.environment()
        if node.name in env:  # Jenkins resolves environment variables as properties
            return env[node.name]
        raise StepFailed(
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
            raise StepFailed(
                f"java.lang.NullPointerException: Cannot get property "
                f"'{node.name}' on null object (line {node.line})"
            )
        raise error_at(
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
        raise StepFailed(
            f"cannot index {gstring(target)!r} with {gstring(index)!r} (line {node.line})"
        )

    def _eval_Unary(self, node: Unary) -> Any:
        value = self.eval(node.operand)
        return (not groovy_truth(value)) if node.op == "!" else -value

    def _eval_Ternary(self, node: Ternary) -> Any:
        return self.eval(node.then) if groovy_truth(self.eval(node.cond)) else self.eval(node.other)

    def _eval_Elvis(self, node: Elvis) -> Any:
        value = self.eval(node.value)
        return value if groovy_truth(value) else self.eval(node.fallback)

    def _eval_Cast(self, node: Cast) -> Any:
        value = self.eval(node.value)
        base = node.type_name.split("<")[0]
        if base in {"List", "ArrayList", "Collection"}:
            return list(value) if value is not None else None
        if base == "String":
            return None if value is None else gstring(value)
        if base in {"Integer", "int", "Long", "long"}:
            return int(value)
        if base in {"Double", "double", "Float", "BigDecimal"}:
            return float(value)
        raise error_at(node, f"'as {node.type_name}' is not supported by the runner")

    def _eval_Binary(self, node: Binary) -> Any:
        if node.op == "&&":
            return groovy_truth(self.eval(node.left)) and groovy_truth(self.eval(node.right))
        if node.op == "||":
            return groovy_truth(self.eval(node.left)) or groovy_truth(self.eval(node.right))
        left, right = self.eval(node.left), self.eval(node.right)
        try:
            if node.op == "==":
                return left == right
            if node.op == "!=":
                return left != right
            if node.op == "in":
                return left in right
            if node.op == "+" and (isinstance(left, str) or isinstance(right, str)):
                return gstring(left) + gstring(right)
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
            raise StepFailed(
                f"cannot apply '{node.op}' to {gstring(left)!r} and "
                f"{gstring(right)!r} (line {node.line}): {exc}"
            ) from exc

    def _eval_MethodCall(self, node: MethodCall) -> Any:
        target = self.eval(node.target)
        args = [self.eval(a) for a in node.args]
        if node.closure is not None:
            args.append(_ClosureValue(node.closure, self.scope))
        if target is None:
            raise StepFailed(
                f"java.lang.NullPointerException: Cannot invoke method "
                f"{node.name}() on null object (line {node.line})"
            )
        return _methods(self, target, node.name, args, node)

    def _eval_Call(self, node: Call) -> Any:
        step = getattr(self, f"step_{node.name}", None)
        if step is None:
            raise error_at(node, f"step '{node.name}' is not supported by the runner")
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
        raise error_at(node, f"'{node.name}' needs {key}")


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
            "join": lambda sep="": sep.join(gstring(x) for x in target),
            "each": each,
            "collect": lambda c: [run(c, x) for x in target],
            "findAll": lambda c: [x for x in target if groovy_truth(run(c, x))],
            "find": lambda c: next((x for x in target if groovy_truth(run(c, x))), None),
            "any": lambda c: any(groovy_truth(run(c, x)) for x in target),
            "every": lambda c: all(groovy_truth(run(c, x)) for x in target),
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
            "toString": lambda: gstring(target),
            "toInteger": lambda: int(target),
            "toDouble": lambda: float(target),
        }[name]
    else:
        method = None
    if method is None:
        raise error_at(
            node, f"method {name}() of a {type(target).__name__} is not supported by the runner"
        )
    try:
        return method(*args)
    except (ValueError, IndexError, TypeError) as exc:
        raise StepFailed(
            f"{name}() failed on {gstring(target)!r} (line {node.line}): {exc}"
        ) from exc
