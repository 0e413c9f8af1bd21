"""Which scenario stages a Jenkinsfile calls, in order, read from its syntax tree: a scenario's
tests compare that list with the CLI's stage list, so the Jenkinsfile cannot fall behind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.jenkins_runner.groovy import Call, Node, Str, parse

_STAGE_CALL = re.compile(r"mlops-workshop\s+(?P<scenario>[a-z_]+)\s+(?P<stage>[a-z_]+)")


def _strings(node: Any, in_post: bool = False) -> Iterator[tuple[Str, bool]]:
    """Every string literal below ``node`` in source order, and whether a ``post`` block
    holds it."""
    if isinstance(node, Str):
        yield node, in_post
    if isinstance(node, Node):
        in_post = in_post or (isinstance(node, Call) and node.name == "post")
        for value in vars(node).values():
            yield from _strings(value, in_post)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, in_post)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _strings(item, in_post)


def jenkinsfile_stage_calls(path: Path, scenario: str) -> list[str]:
    """Stage names in the order the Jenkinsfile first calls ``mlops-workshop SCENARIO STAGE``;
    what ``post`` blocks call (cleanup) runs after a stage's work, so it comes last."""
    strings = sorted(_strings(parse(Path(path).read_text())), key=lambda found: found[0].line)
    steps: list[str] = []
    after: list[str] = []
    for string, in_post in strings:
        for part in string.parts:
            if not isinstance(part, str):
                continue
            for match in _STAGE_CALL.finditer(part):
                stage = match["stage"]
                if match["scenario"] == scenario and stage != "stages":
                    (after if in_post else steps).append(stage)
    return list(dict.fromkeys(steps + after))


def assert_stages_match(scenario: str, jenkinsfile: Path, stage_names: list[str]) -> None:
    calls = jenkinsfile_stage_calls(jenkinsfile, scenario)
    assert calls == stage_names, (
        f"{jenkinsfile} calls stages {calls}, but the CLI's stage list is {stage_names}"
    )
