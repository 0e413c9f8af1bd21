"""The declarative layer of a Jenkinsfile: ``load_jenkinsfile`` turns the Groovy tree into
parameters, environment, options, stages (with ``when``, nested ``stages``, ``post``) and
checks that every step is one the runner implements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.jenkins_runner.groovy import (
    Assign,
    Block,
    Call,
    ExprStmt,
    GroovySyntaxError,
    ListLit,
    Literal,
    Name,
    Node,
    Str,
    parse,
    walk,
)


class JenkinsfileError(Exception):
    """The Jenkinsfile uses something the runner does not understand, or is ill-formed."""


# -- the declarative model --------------------------------------------------------------
@dataclass
class Parameter:
    name: str
    kind: str  # string, text, choice, booleanParam, password
    default: Any
    choices: list[str] = field(default_factory=list)


@dataclass
class AgentDef:
    """Where steps run: ``any``/``label`` (a plain agent), ``docker`` or ``kubernetes``
    (``images``: what those pull), ``dockerfile`` (``dockerfile``: the file in the checkout
    Jenkins builds); ``none`` holds no agent (no workspace: ``sh`` cannot run there)."""

    kind: str
    line: int
    images: list[str] = field(default_factory=list)
    dockerfile: str | None = None
    pod_file: str | None = None  # kubernetes { yamlFile 'x' }: the pod, read from the checkout

    def describe(self) -> str | None:
        if self.kind == "none":
            return None
        detail = self.dockerfile or self.pod_file or ", ".join(self.images)
        return f"{self.kind}:{detail}" if detail else self.kind


@dataclass
class StageDef:
    name: str
    line: int
    agent: AgentDef | None = None
    when: list[Call] = field(default_factory=list)
    environment: list[tuple[str, Node]] = field(default_factory=list)
    timeout: float | None = None
    steps: Block | None = None
    stages: list[StageDef] = field(default_factory=list)
    post: dict[str, Block] = field(default_factory=dict)


@dataclass
class PipelineDef:
    parameters: list[Parameter]
    environment: list[tuple[str, Node]]
    timeout: float | None
    stages: list[StageDef]
    post: dict[str, Block]
    agent: AgentDef | None = None

    def agents(self) -> list[AgentDef]:
        """Every agent directive, the pipeline's and each (nested) stage's."""
        found = [self.agent] if self.agent else []
        pending = list(self.stages)
        while pending:
            stage = pending.pop(0)
            found += [stage.agent] if stage.agent else []
            pending += stage.stages
        return found


POST_ORDER = ["always", "aborted", "failure", "success", "unstable", "unsuccessful", "cleanup"]
_UNITS = {"SECONDS": 1, "MINUTES": 60, "HOURS": 3600, "DAYS": 86400, "MILLISECONDS": 0.001}
_IGNORED_OPTIONS = {
    "disableConcurrentBuilds",
    "buildDiscarder",
    "timestamps",
    "ansiColor",
    "skipDefaultCheckout",
    "skipStagesAfterUnstable",
    "preserveStashes",
    "quietPeriod",
    "durabilityHint",
    "parallelsAlwaysFailFast",
    "disableResume",
    "newContainerPerStage",
}
STEPS = {
    "sh",
    "echo",
    "error",
    "script",
    "dir",
    "withCredentials",
    "withEnv",
    "archiveArtifacts",
    "junit",
    "input",
    "timeout",
    "waitUntil",
    "writeFile",
    "readFile",
    "fileExists",
    "deleteDir",
    "stash",
    "unstash",
}
BINDINGS = {"usernamePassword", "string", "file"}
_GROOVY_ONLY = {"def", "if"}  # statements that need a script block


def error_at(node: Node, message: str) -> JenkinsfileError:
    return JenkinsfileError(f"line {node.line}: {message}")


def _literal(node: Node) -> Any:
    """A constant argument (directive values are never computed)."""
    if isinstance(node, Str) and node.plain() is not None:
        return node.plain()
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, ListLit):
        return [_literal(item) for item in node.items]
    if isinstance(node, Name):
        return node.name
    raise error_at(node, "expected a constant here")


def directive_calls(block: Block, where: str) -> list[Call]:
    out = []
    for statement in block.statements:
        node = statement.expr if isinstance(statement, ExprStmt) else statement
        if not isinstance(node, Call):
            raise error_at(statement, f"only directives are allowed in {where}")
        out.append(node)
    return out


def closure_body(call: Call) -> Block:
    if call.closure is None:
        raise error_at(call, f"'{call.name}' needs a {{ ... }} block")
    return call.closure.body


def timeout_seconds(call: Call) -> float:
    named = {k: _literal(v) for k, v in call.named.items()}
    amount = named.get("time", _literal(call.args[0]) if call.args else None)
    unit = str(named.get("unit", "MINUTES"))
    if not isinstance(amount, (int, float)) or unit not in _UNITS:
        raise error_at(call, "timeout needs time: <number> and unit: SECONDS/MINUTES/HOURS/DAYS")
    return float(amount) * _UNITS[unit]


def _options(block: Block) -> float | None:
    timeout = None
    for call in directive_calls(block, "options"):
        if call.name == "timeout":
            timeout = timeout_seconds(call)
        elif call.name not in _IGNORED_OPTIONS:
            raise error_at(call, f"option '{call.name}' is not supported by the runner")
    return timeout


def _environment(block: Block) -> list[tuple[str, Node]]:
    pairs = []
    for statement in block.statements:
        if not (isinstance(statement, Assign) and isinstance(statement.target, Name)):
            raise error_at(statement, "environment entries are NAME = value")
        pairs.append((statement.target.name, statement.value))
    return pairs


def _post(block: Block) -> dict[str, Block]:
    conditions = {}
    for call in directive_calls(block, "post"):
        if call.name not in POST_ORDER:
            raise error_at(call, f"post condition '{call.name}' is not supported by the runner")
        conditions[call.name] = closure_body(call)
        _check_steps(conditions[call.name], in_script=False)
    return conditions


def _parameters(block: Block) -> list[Parameter]:
    out = []
    for call in directive_calls(block, "parameters"):
        named = {k: _literal(v) for k, v in call.named.items()}
        if "name" not in named:
            raise error_at(call, f"parameter '{call.name}' has no name")
        if call.name in {"string", "text", "password"}:
            out.append(Parameter(named["name"], call.name, str(named.get("defaultValue", ""))))
        elif call.name == "booleanParam":
            out.append(Parameter(named["name"], call.name, bool(named.get("defaultValue"))))
        elif call.name == "choice":
            choices = named.get("choices")
            if not isinstance(choices, list) or not choices:
                raise error_at(call, "choice parameters need a non-empty choices: [...] list")
            out.append(Parameter(named["name"], call.name, choices[0], [str(c) for c in choices]))
        else:
            raise error_at(call, f"parameter type '{call.name}' is not supported by the runner")
    return out


_WHEN = {
    "branch",
    "changeRequest",
    "expression",
    "environment",
    "not",
    "allOf",
    "anyOf",
    "buildingTag",
    "tag",
    "beforeAgent",
    "beforeInput",
    "beforeOptions",
}


def _check_when(calls: list[Call]) -> None:
    for call in calls:
        if call.name not in _WHEN:
            raise error_at(call, f"when condition '{call.name}' is not supported by the runner")
        if call.name in {"not", "allOf", "anyOf"}:
            _check_when(directive_calls(closure_body(call), call.name))
        if call.name == "expression":
            _check_steps(closure_body(call), in_script=True)


def _check_steps(block: Block, in_script: bool) -> None:
    """Every call must be a step the runner implements. Outside ``script``, as Jenkins'
    declarative validator demands ("Expected a step"), every statement, also inside a step's
    own block (``dir``, ``withCredentials``, ``timeout``, ``waitUntil`` ...), is a step call."""
    for statement in block.statements:
        node = statement.expr if isinstance(statement, ExprStmt) else statement
        if not in_script and not isinstance(node, Call):
            raise error_at(
                statement,
                "Expected a step: Groovy statements (declarations, if, "
                "assignments, return) need a script { } block in "
                "declarative steps",
            )
        for found in walk(statement):
            if isinstance(found, Call) and found.name not in STEPS | BINDINGS:
                raise error_at(found, f"step '{found.name}' is not supported by the runner")
        if isinstance(node, Call) and node.closure is not None:
            _check_steps(node.closure.body, in_script or node.name == "script")


def _agent_options(call: Call) -> dict[str, Any]:
    """``docker { image 'x' }`` / ``dockerfile { filename 'x' }``: option -> constant."""
    if call.closure is None:
        return {"": _literal(call.args[0])} if call.args else {}
    options: dict[str, Any] = {}
    for option in directive_calls(call.closure.body, call.name):
        if len(option.args) != 1:
            raise error_at(option, f"{call.name} option '{option.name}' takes one value")
        options[option.name] = _literal(option.args[0])
    return options


def pod_images(yaml_text: str, node: Node) -> list[str]:
    """The images of a kubernetes agent's pod (``spec.containers[].image``)."""
    import yaml

    try:
        pod = yaml.safe_load(yaml_text) or {}
        containers = pod["spec"]["containers"]
        return [str(c["image"]) for c in containers]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise error_at(
            node, f"the kubernetes agent's pod yaml has no spec.containers[].image: {exc}"
        ) from None


def _agent(call: Call) -> AgentDef:
    if call.closure is None:
        if (
            len(call.args) == 1
            and isinstance(call.args[0], Name)
            and call.args[0].name
            in {
                "any",
                "none",
            }
        ):
            return AgentDef(call.args[0].name, call.line)
        raise error_at(call, "agent is any, none or { label/docker/dockerfile/kubernetes ... }")
    [kind] = directive_calls(call.closure.body, "agent") or [None]
    if kind is None:
        raise error_at(call, "agent { } is empty")
    options = _agent_options(kind)
    if kind.name == "label":
        return AgentDef("label", call.line)
    if kind.name == "docker":
        image = options.get("image", options.get(""))
        if not image:
            raise error_at(kind, "docker agents need an image")
        return AgentDef("docker", call.line, images=[str(image)])
    if kind.name == "dockerfile":
        if options.get("") is False:
            raise error_at(kind, "dockerfile false is no agent")
        name = str(options.get("filename", "Dockerfile"))
        folder = str(options.get("dir", "."))
        path = name if folder == "." else f"{folder.rstrip('/')}/{name}"
        return AgentDef("dockerfile", call.line, dockerfile=path)
    if kind.name == "kubernetes":
        if "yamlFile" in options:
            return AgentDef("kubernetes", call.line, pod_file=str(options["yamlFile"]))
        if "yaml" not in options:
            raise error_at(kind, "kubernetes agents need a pod: yaml '...' or yamlFile 'path'")
        return AgentDef("kubernetes", call.line, images=pod_images(str(options["yaml"]), kind))
    raise error_at(kind, f"agent type '{kind.name}' is not supported by the runner")


def _directives(
    block: Block,
    kind: str,
    where: str,
    readers: Mapping[str, Callable[[Block], Any]],
    *,
    once: bool = False,
    ignored: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The directives of a ``pipeline`` or ``stage`` (``kind``) block: ``agent`` read from its
    call, every other one by its reader from its ``{ }`` body; ``once``: each may appear once;
    ``ignored`` ones are accepted and not read."""
    values: dict[str, Any] = {}
    for directive in directive_calls(block, where):
        if once and directive.name in values:
            raise error_at(directive, f"'{directive.name}' appears twice")
        if directive.name == "agent":
            values["agent"] = _agent(directive)
            continue
        if directive.name in ignored:
            values[directive.name] = None
            continue
        body = closure_body(directive)
        reader = readers.get(directive.name)
        if reader is None:
            raise error_at(
                directive, f"{kind} directive '{directive.name}' is not supported by the runner"
            )
        values[directive.name] = reader(body)
    return values


def _when(body: Block) -> list[Call]:
    conditions = directive_calls(body, "when")
    _check_when(conditions)
    return conditions


def _steps(body: Block) -> Block:
    _check_steps(body, in_script=False)
    return body


def _stages(body: Block) -> list[StageDef]:
    return [_stage(c) for c in directive_calls(body, "stages")]


_SHARED_DIRECTIVES: dict[str, Callable[[Block], Any]] = {
    "environment": _environment,
    "options": _options,
    "stages": _stages,
    "post": _post,
}


def _stage(call: Call) -> StageDef:
    if call.name != "stage" or len(call.args) != 1:
        raise error_at(call, "expected stage('name') { ... }")
    name = str(_literal(call.args[0]))
    readers = {**_SHARED_DIRECTIVES, "when": _when, "steps": _steps}
    found = _directives(closure_body(call), "stage", f"stage '{name}'", readers)
    stage = StageDef(
        name,
        call.line,
        agent=found.get("agent"),
        when=found.get("when", []),
        environment=found.get("environment", []),
        timeout=found.get("options"),
        steps=found.get("steps"),
        stages=found.get("stages", []),
        post=found.get("post", {}),
    )
    if (stage.steps is None) == (not stage.stages):
        raise error_at(call, f"stage '{stage.name}' needs exactly one of steps or stages")
    return stage


def load_jenkinsfile(source: str | Path) -> PipelineDef:
    """Parse a declarative Jenkinsfile (path or text) and check it uses only what we run."""
    text = Path(source).read_text() if isinstance(source, Path) else source
    try:
        tree = parse(text)
    except GroovySyntaxError as exc:
        raise JenkinsfileError(str(exc)) from exc
    top = directive_calls(tree, "a declarative Jenkinsfile")
    if len(top) != 1 or top[0].name != "pipeline":
        raise JenkinsfileError("a declarative Jenkinsfile is one pipeline { ... } block")
    readers = {**_SHARED_DIRECTIVES, "parameters": _parameters}
    # triggers: when it runs does not change what it runs
    found = _directives(
        closure_body(top[0]),
        "pipeline",
        "pipeline",
        readers,
        once=True,
        ignored=frozenset({"triggers"}),
    )
    pipeline = PipelineDef(
        found.get("parameters", []),
        found.get("environment", []),
        found.get("options"),
        found.get("stages", []),
        found.get("post", {}),
        agent=found.get("agent"),
    )
    if not pipeline.stages:
        raise JenkinsfileError("the pipeline has no stages")
    return pipeline
