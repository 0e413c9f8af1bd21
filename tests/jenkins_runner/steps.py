"""The steps Jenkins' pipeline plugins provide, run the way Jenkins runs them: ``sh`` as
its own ``sh -xe`` process (dash, as on Debian agents) with its output in a file as the
durable-task plugin keeps it, ``withCredentials`` bindings that exist only inside their
block, ``input`` with its ``submitter``, ``timeout``/``waitUntil``, files, stashes and
archived artifacts. A step that touches files needs an agent (a workspace).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_helpers.waiting import pause
from tests.jenkins_runner.credentials import SecretFile, UsernamePassword
from tests.jenkins_runner.declarative import BINDINGS, closure_body, error_at, timeout_seconds
from tests.jenkins_runner.evaluate import (
    BuildAborted,
    Evaluator,
    StepFailed,
    groovy_truth,
    gstring,
)
from tests.jenkins_runner.groovy import Call, Literal


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


@dataclass
class _Binding:
    kind: str
    credentials_id: str
    variables: dict[str, str]  # role -> variable name


class StepEvaluator(Evaluator):
    """The Groovy interpreter with the steps Jenkins' pipeline plugins provide: a call
    ``name(...)`` runs ``step_name``."""

    def _eval_Call(self, node: Call) -> Any:
        if node.name in BINDINGS:
            return self.binding(node)
        return super()._eval_Call(node)

    def step_echo(self, node: Call) -> None:
        message = gstring(self.first_arg(node, "message"))
        self.build.log(message)
        self.build.record(self.scope, "echo", message, output=message)

    def step_error(self, node: Call) -> None:
        message = gstring(self.first_arg(node, "message"))
        self.build.record(self.scope, "error", message, output=message)
        raise StepFailed(message)

    def step_script(self, node: Call) -> Any:
        return self.call_closure_body(closure_body(node))

    def step_dir(self, node: Call) -> Any:
        self.need_workspace(node)
        path = Path(gstring(self.first_arg(node, "path")))
        where = path if path.is_absolute() else self.scope.cwd / path
        where.mkdir(parents=True, exist_ok=True)
        return type(self)(self.scope.child(cwd=where)).call_closure_body(closure_body(node))

    def step_withEnv(self, node: Call) -> Any:
        overrides = self.first_arg(node, "overrides")
        child = self.scope.child()
        for entry in overrides:
            name, _, value = gstring(entry).partition("=")
            if "+" in name:  # PATH+EXTRA=/dir prepends, as Jenkins does
                base = name.split("+")[0]
                current = child.environment().get(base, "")
                child.env[base] = f"{value}{os.pathsep}{current}" if current else value
            else:
                child.env[name] = value
        return type(self)(child).call_closure_body(closure_body(node))

    def binding(self, node: Call) -> _Binding:
        named = {k: gstring(v) for k, v in self.named(node).items()}
        roles = {
            "usernamePassword": ("usernameVariable", "passwordVariable"),
            "string": ("variable",),
            "file": ("variable",),
        }[node.name]
        if "credentialsId" not in named or any(r not in named for r in roles):
            raise error_at(node, f"{node.name}(...) needs credentialsId and {', '.join(roles)}")
        return _Binding(node.name, named["credentialsId"], {r: named[r] for r in roles})

    def step_withCredentials(self, node: Call) -> Any:
        bindings = self.first_arg(node, "bindings")
        if not isinstance(bindings, list) or not all(isinstance(b, _Binding) for b in bindings):
            raise error_at(node, "withCredentials needs a list of usernamePassword/string/file")
        child = self.scope.child()
        files: list[Path] = []
        for binding in bindings:
            credential = self.build.credential(binding.credentials_id)
            if binding.kind == "usernamePassword":
                if not isinstance(credential, UsernamePassword):
                    raise StepFailed(
                        f"credentials '{binding.credentials_id}' are not a username with password"
                    )
                child.env[binding.variables["usernameVariable"]] = credential.username
                child.env[binding.variables["passwordVariable"]] = credential.password
                self.build.secrets += [credential.username, credential.password]
            elif binding.kind == "string":
                if not isinstance(credential, str):
                    raise StepFailed(
                        f"credentials '{binding.credentials_id}' are not a secret text"
                    )
                child.env[binding.variables["variable"]] = credential
                self.build.secrets.append(credential)
            else:
                if not isinstance(credential, SecretFile):
                    raise StepFailed(
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
            return type(self)(child).call_closure_body(closure_body(node))
        finally:
            for folder in files:  # a secret file exists only inside its block
                shutil.rmtree(folder, ignore_errors=True)

    def need_workspace(self, node: Call) -> None:
        """Steps that touch files need a node: without an agent Jenkins has no workspace."""
        if self.scope.agent is None:
            raise StepFailed(
                f"line {node.line}: {node.name}: Required context class hudson.FilePath is "
                f"missing; Perhaps you forgot to surround the code with a step that provides "
                f"this, such as: node (no agent holds this stage)"
            )

    def step_sh(self, node: Call) -> Any:
        self.need_workspace(node)
        named = self.named(node)
        script = gstring(named["script"] if "script" in named else self.first_arg(node, "script"))
        return_stdout = groovy_truth(named.get("returnStdout"))
        return_status = groovy_truth(named.get("returnStatus"))
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
                raise BuildAborted("Timeout has been exceeded") from None
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
            raise StepFailed(f"script returned exit code {code}")
        if return_status:
            return code
        return stdout if return_stdout else None

    def workspace_files(self, node: Call, key: str, allow_empty: str, none_found: str) -> list[str]:
        """The workspace files a step's Ant patterns (``key``) match, recorded as the step's
        output; none found fails the step unless ``allow_empty`` is true."""
        self.need_workspace(node)
        named = self.named(node)
        patterns = gstring(named.get(key, self.first_arg(node, key)))
        found = _ant_glob(self.build.workspace, patterns)
        self.build.record(self.scope, node.name, patterns, output="\n".join(found))
        if not found and not groovy_truth(named.get(allow_empty)):
            raise StepFailed(none_found.format(patterns=patterns))
        return found

    def step_archiveArtifacts(self, node: Call) -> None:
        self.build.archived += self.workspace_files(
            node,
            "artifacts",
            "allowEmptyArchive",
            'No artifacts found that match the file pattern "{patterns}"',
        )

    def step_junit(self, node: Call) -> None:
        self.workspace_files(
            node,
            "testResults",
            "allowEmptyResults",
            'No test report files were found matching "{patterns}"',
        )

    def step_input(self, node: Call) -> Any:
        named = self.named(node)
        if "parameters" in named:
            raise error_at(node, "input with parameters is not supported by the runner")
        message = gstring(named.get("message", self.first_arg(node, "message")))
        approver = self.build.approver
        # submitter: comma-separated users or groups; anyone who can build may answer without
        allowed = [s.strip() for s in gstring(named.get("submitter", "")).split(",") if s.strip()]
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
            raise BuildAborted(f"input '{message}' was rejected")
        if not may:
            raise BuildAborted(f"input '{message}': {outcome}; Timeout has been exceeded")
        return approver if "submitterParameter" in named else None

    def step_timeout(self, node: Call) -> Any:
        seconds = timeout_seconds(
            Call(
                "timeout",
                node.args,
                {k: Literal(v, line=node.line) for k, v in self.named(node).items()},
                line=node.line,
            )
        )
        deadline = min(self.scope.deadline, time.monotonic() + seconds)
        return type(self)(self.scope.child(deadline=deadline)).call_closure_body(closure_body(node))

    def step_waitUntil(self, node: Call) -> Any:
        interval = float(self.named(node).get("initialRecurrencePeriod", 250)) / 1000
        body = closure_body(node)
        while True:  # bounded by the enclosing timeout (the build always has one)
            if groovy_truth(self.call_closure_body(body)):
                return True
            pause(min(interval, self.scope.remaining()))
            self.scope.remaining()
            interval = min(interval * 1.2, 15.0)  # Jenkins backs off the same way

    def step_stash(self, node: Call) -> None:
        """Files kept by the controller for a later stage on another agent (``unstash``)."""
        self.need_workspace(node)
        named = self.named(node)
        name = gstring(named.get("name", self.first_arg(node, "name")))
        includes = gstring(named.get("includes", "**"))
        found = _ant_glob(self.scope.cwd, includes)
        if not found and not groovy_truth(named.get("allowEmpty")):
            raise StepFailed(f"No files included in stash '{name}'")
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
        name = gstring(self.first_arg(node, "name"))
        if name not in self.build.stashes:
            raise StepFailed(f"No such saved stash '{name}'")
        shutil.copytree(self.build.stashes[name], self.scope.cwd, dirs_exist_ok=True, symlinks=True)
        self.build.record(self.scope, "unstash", name)

    def step_writeFile(self, node: Call) -> None:
        self.need_workspace(node)
        named = self.named(node)
        path = self.scope.cwd / gstring(named["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(gstring(named["text"]))
        self.build.record(self.scope, "writeFile", gstring(named["file"]))

    def step_readFile(self, node: Call) -> str:
        self.need_workspace(node)
        path = self.scope.cwd / gstring(self.first_arg(node, "file"))
        if not path.is_file():
            raise StepFailed(f"java.nio.file.NoSuchFileException: {path}")
        return path.read_text()

    def step_fileExists(self, node: Call) -> bool:
        self.need_workspace(node)
        return (self.scope.cwd / gstring(self.first_arg(node, "file"))).exists()

    def step_deleteDir(self, node: Call) -> None:
        self.need_workspace(node)
        shutil.rmtree(self.scope.cwd, ignore_errors=True)
        self.build.record(self.scope, "deleteDir", str(self.scope.cwd))


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
