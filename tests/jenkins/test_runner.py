"""The Jenkins-shaped runner on small Jenkinsfiles of our own: each rule Jenkins follows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.jenkins_runner import (
    BuildResult,
    JenkinsfileError,
    SecretFile,
    UsernamePassword,
    load_jenkinsfile,
    make_origin,
    run_jenkinsfile,
)

Run = Callable[..., BuildResult]


def _pipeline(stages: str, extra: str = "") -> str:
    return f"pipeline {{\n    agent any\n{extra}\n    stages {{\n{stages}\n    }}\n}}\n"


def _stage(name: str, steps: str, extra: str = "") -> str:
    return f"stage('{name}') {{\n{extra}\nsteps {{\n{steps}\n}}\n}}\n"


def test_each_sh_step_is_its_own_dash_process_in_the_workspace(run_text: Run) -> None:
    """Jenkins runs `sh -xe script`; on a Debian agent that sh is dash: -e and -x, no
    pipefail (dash has none), no bash."""
    text = _pipeline(
        _stage(
            "A",
            "sh 'echo $$ > pid1; export LEAK=1; pwd > where'\n"
            "sh 'echo $$ > pid2; echo \"leak=${LEAK:-none}\" > leak'\n"
            "sh 'set -o | grep -E \"^(errexit|xtrace)[[:space:]]+on\" > opts'\n"
            "sh 'echo \"${BASH_VERSION:-not bash}\" > shell'\n"
            "sh '(set -o pipefail) 2> pipefail || true'",
        )
    )
    build = run_text(text)
    ws = build.workspace
    assert build.result == "SUCCESS", build.log
    assert (ws / "pid1").read_text() != (ws / "pid2").read_text()
    assert (ws / "where").read_text().strip() == str(ws)
    assert (ws / "leak").read_text().strip() == "leak=none"
    assert len((ws / "opts").read_text().splitlines()) == 2  # -e and -x are on
    assert (ws / "shell").read_text().strip() == "not bash"
    assert "pipefail" in (ws / "pipefail").read_text()  # dash: "Illegal option -o pipefail"


def test_a_failing_command_fails_the_step_but_not_inside_a_pipe(run_text: Run) -> None:
    """As on Jenkins' dash: `false | true` and `x=$(false | tr a b)` pass unseen (the reason
    scripts must not pipe a command whose failure matters); `x=$(false)` fails the step."""
    unseen = "sh 'false | true; x=$(false | tr a b); echo \"x=[$x]\"'"
    build = run_text(_pipeline(_stage("A", unseen) + _stage("B", "sh 'x=$(false)'")))
    assert build.result == "FAILURE"
    assert build.statuses() == {"A": "SUCCESS", "B": "FAILURE"}
    assert "x=[]" in build.stage("A").steps[0].output
    assert build.stage("B").reason == "script returned exit code 1"
    after = run_text(_pipeline(_stage("A", "sh 'false'") + _stage("B", "sh 'true'")))
    assert after.statuses() == {"A": "FAILURE", "B": "SKIPPED"}
    assert after.stage("B").reason == "skipped due to earlier failure(s)"


def _git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _advance(bare: Path, branch: str, name: str, tmp: Path) -> str:
    """A new commit on ``branch`` of ``bare`` (someone merged something meanwhile)."""
    clone = tmp / f"clone-{name}"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(bare), str(clone)], check=True)
    (clone / name).write_text(name)
    identity = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", *identity, "add", name], cwd=clone, check=True)
    subprocess.run(["git", *identity, "commit", "-q", "-m", name], cwd=clone, check=True)
    subprocess.run(["git", "push", "-q", "origin", branch], cwd=clone, check=True)
    return _git_out(clone, "rev-parse", "HEAD")


def test_a_pr_build_is_the_pull_ref_merged_with_its_target(tmp_path: Path) -> None:
    """GitHub Branch Source: fetch refs/pull/7/head (as origin/PR-7) and the target only,
    check out the PR head and merge the target into it."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "Jenkinsfile").write_text(_pipeline(_stage("A", "sh 'env > env.txt'")))
    origin = make_origin(
        source,
        tmp_path / "origin.git",
        pr_branch="feature",
        change_pr=lambda tree: (tree / "pr.txt").write_text("pr"),
    )
    target_head = _advance(origin.path, "main", "on-main.txt", tmp_path)
    build = run_jenkinsfile(origin, tmp_path / "ws", change_id=7, build_number=3, timeout=60)
    ws = build.workspace
    env = _env_file(ws / "env.txt")
    assert (ws / "pr.txt").read_text() == "pr" and (ws / "on-main.txt").is_file()
    head = _git_out(ws, "rev-parse", "HEAD")
    pr_head = _git_out(ws, "rev-parse", "origin/PR-7")
    assert _git_out(ws, "rev-parse", "HEAD^1", "HEAD^2").split() == [pr_head, target_head]
    assert pr_head == _git_out(origin.path, "rev-parse", "feature")
    assert env["GIT_COMMIT"] == head  # the merge Jenkins built
    # the narrow refspec: the PR's branch is never fetched by its name
    assert _git_out(ws, "for-each-ref", "--format=%(refname)", "refs/remotes").split() == [
        "refs/remotes/origin/PR-7",
        "refs/remotes/origin/main",
    ]
    assert env["WORKSPACE"] == str(ws) and env["BRANCH_NAME"] == "PR-7"
    assert (env["CHANGE_ID"], env["CHANGE_TARGET"], env["CHANGE_BRANCH"]) == (
        "7",
        "main",
        "feature",
    )
    assert "CHANGE_FORK" not in env
    assert env["BUILD_NUMBER"] == "3" and env["JOB_NAME"] == "workshop/PR-7"
    assert env["BUILD_URL"].endswith("/job/workshop/job/PR-7/3/")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)

    unmerged = run_jenkinsfile(origin, tmp_path / "ws3", change_id=7, pr_strategy="head")
    assert _git_out(unmerged.workspace, "rev-parse", "HEAD") == pr_head
    assert not (unmerged.workspace / "on-main.txt").exists()

    branch_build = run_jenkinsfile(origin, tmp_path / "ws2", timeout=60)
    env2 = (branch_build.workspace / "env.txt").read_text()
    assert "BRANCH_NAME=main" in env2 and "CHANGE_ID" not in env2
    assert not (branch_build.workspace / "pr.txt").exists()


def test_a_pr_from_a_fork_comes_through_the_pull_ref(tmp_path: Path) -> None:
    """The fork's branch is called main too: the build must still be of the fork's commit,
    with CHANGE_FORK naming the fork; origin's main is untouched."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "Jenkinsfile").write_text(_pipeline(_stage("A", "sh 'env > env.txt'")))
    origin = make_origin(
        source,
        tmp_path / "origin.git",
        pr_branch="main",
        fork="contributor",
        change_pr=lambda tree: (tree / "pr.txt").write_text("from the fork"),
    )
    assert origin.fork_path is not None
    fork_head = _git_out(origin.fork_path, "rev-parse", "main")
    assert _git_out(origin.path, "rev-parse", "main") != fork_head
    build = run_jenkinsfile(origin, tmp_path / "ws", change_id=9, timeout=60)
    env = _env_file(build.workspace / "env.txt")
    assert (build.workspace / "pr.txt").read_text() == "from the fork"
    assert _git_out(build.workspace, "rev-parse", "HEAD") == fork_head  # PR contains main
    assert (env["CHANGE_FORK"], env["CHANGE_BRANCH"], env["CHANGE_TARGET"]) == (
        "contributor",
        "main",
        "main",
    )


def test_a_second_build_reuses_the_workspace_and_keeps_untracked_files(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Jenkinsfile").write_text(
        _pipeline(_stage("A", "sh 'echo $BUILD_NUMBER >> runs.txt'"))
    )
    origin = make_origin(source, tmp_path / "origin.git")
    run_jenkinsfile(origin, tmp_path / "ws", build_number=1, timeout=60)
    build = run_jenkinsfile(origin, tmp_path / "ws", build_number=2, timeout=60)
    assert (build.workspace / "runs.txt").read_text().split() == ["1", "2"]


def test_credentials_exist_only_inside_their_block_and_are_masked(run_text: Run) -> None:
    steps = """
        withCredentials([usernamePassword(credentialsId: 'aws', usernameVariable: 'AK',
                                          passwordVariable: 'SK'),
                         string(credentialsId: 'tok', variable: 'TOKEN'),
                         file(credentialsId: 'kube', variable: 'KUBECONFIG')]) {
            sh 'echo "inside $AK $SK $TOKEN"; cat "$KUBECONFIG"; echo "$KUBECONFIG" > kpath'
        }
        sh 'echo "after ${AK:-unset} ${SK:-unset} ${TOKEN:-unset}"'
        sh 'test ! -e "$(cat kpath)"'
    """
    build = run_text(
        _pipeline(_stage("A", steps)),
        credentials={
            "aws": UsernamePassword("AKIAEXAMPLEUSER", "s3cr3t-value-123"),
            "tok": "token-abcdef-987",
            "kube": SecretFile("kube-secret-content", "config"),
        },
    )
    assert build.result == "SUCCESS", build.log
    inside, after, _ = build.sh_steps("A")
    assert inside.output.count("****") >= 4
    for secret in (
        "AKIAEXAMPLEUSER",
        "s3cr3t-value-123",
        "token-abcdef-987",
        "kube-secret-content",
    ):
        assert secret not in build.log and secret not in inside.output
    assert "after unset unset unset" in after.output


def test_a_missing_credential_fails_the_stage(run_text: Run) -> None:
    steps = "withCredentials([string(credentialsId: 'nope', variable: 'X')]) { sh 'true' }"
    build = run_text(_pipeline(_stage("A", steps)))
    assert build.status("A") == "FAILURE"
    assert "Could not find credentials entry with ID 'nope'" in build.stage("A").reason


def test_post_blocks_run_in_jenkins_order_at_both_levels(run_text: Run) -> None:
    stage_post = "post { failure { echo 'stage failed' }\nalways { echo 'stage always' } }"
    pipeline_post = (
        "post {\n success { echo 's' }\n cleanup { sh 'echo c > cleaned' }\n"
        " failure { echo 'f' }\n always { echo 'a' }\n}"
    )
    text = _pipeline(
        _stage("A", "sh 'exit 3'", extra=stage_post) + _stage("B", "echo 'no'"), extra=pipeline_post
    )
    build = run_text(text)
    assert build.result == "FAILURE"
    assert build.stage("A").post_run == ["always", "failure"]
    assert build.post_run == ["always", "failure", "cleanup"]
    assert (build.workspace / "cleaned").is_file()
    assert [s.post for s in build.steps if s.step == "echo"] == [
        "always",
        "failure",
        "always",
        "failure",
    ]


def test_when_conditions_on_branch_change_request_and_expression(run_text: Run) -> None:
    stages = "\n".join(
        [
            _stage("main only", "echo 'm'", extra="when { branch 'main' }"),
            _stage("PR only", "echo 'p'", extra="when { changeRequest() }"),
            _stage("PR into main", "echo 'pm'", extra="when { changeRequest target: 'main' }"),
            _stage(
                "local",
                "echo 'l'",
                extra="when { expression { return params.BACKEND == 'local' } }",
            ),
            _stage(
                "not local",
                "echo 'n'",
                extra="when { not { environment name: 'MODE', value: 'local' } }",
            ),
            "stage('nested') {\nwhen { anyOf { branch 'PR-*'; buildingTag() } }\nstages {\n"
            + _stage("inner", "echo 'i'")
            + "\n}\n}",
        ]
    )
    extra = (
        "parameters { choice(name: 'BACKEND', choices: ['aws', 'local']) }\n"
        'environment { MODE = "${params.BACKEND}" }'
    )
    build = run_text(_pipeline(stages, extra), change_id=5, params={"BACKEND": "local"})
    assert build.statuses() == {
        "main only": "SKIPPED",
        "PR only": "SUCCESS",
        "PR into main": "SUCCESS",
        "local": "SUCCESS",
        "not local": "SKIPPED",
        "nested": "SUCCESS",
        "inner": "SUCCESS",
    }
    branch = run_text(_pipeline(stages, extra))
    assert branch.status("main only") == "SUCCESS" and branch.status("inner") == "SKIPPED"
    assert branch.stage("inner").reason == "skipped due to when conditional"


def test_parameters_and_environment_reach_sh_as_groovy_and_bash_see_them(run_text: Run) -> None:
    extra = """
    parameters {
        string(name: 'ATTENDEE', defaultValue: 'jd')
        booleanParam(name: 'FAST', defaultValue: false)
    }
    environment {
        NAME = "svc-${params.ATTENDEE}"
        TARGET = "${env.CHANGE_TARGET ?: 'main'}"
        RUNS = "${env.WORKSPACE}/runs"
    }
    """
    steps = """
        sh "echo groovy:${env.NAME}:$ATTENDEE:${params.FAST} > g"
        sh 'echo bash:$NAME:$TARGET:$RUNS:$ATTENDEE:$FAST > b'
        sh '''
            echo "multi \\
              line" > m
        '''
    """
    build = run_text(_pipeline(_stage("A", steps), extra), params={"ATTENDEE": "ab"})
    ws = build.workspace
    assert build.result == "SUCCESS", build.log
    assert (ws / "g").read_text().strip() == "groovy:svc-ab:ab:false"
    assert (ws / "b").read_text().strip() == f"bash:svc-ab:main:{ws}/runs:ab:false"
    assert (ws / "m").read_text().split() == ["multi", "line"]


def test_unknown_parameters_and_bad_choices_are_refused(run_text: Run) -> None:
    extra = "parameters { choice(name: 'BACKEND', choices: ['aws', 'local']) }"
    with pytest.raises(JenkinsfileError, match=r"unknown parameter\(s\) \['BAKEND'\]"):
        run_text(_pipeline(_stage("A", "echo 'x'"), extra), params={"BAKEND": "local"})
    with pytest.raises(JenkinsfileError, match="not one of"):
        run_text(_pipeline(_stage("A", "echo 'x'"), extra), params={"BACKEND": "gcp"})


def test_script_blocks_dir_with_env_input_and_return_stdout(run_text: Run) -> None:
    steps = """
        dir('sub/dir') {
            sh 'pwd > here'
        }
        script {
            def approver = input(message: 'Go?', ok: 'Yes', submitterParameter: 'WHO')
            String ids = sh(returnStdout: true, script: 'printf "a\\nb\\nc\\n"').trim()
            List<String> items = ids ? ids.split('\\n') as List<String> : []
            if (items.size() > 1) {
                items.drop(1).each { String item ->
                    sh "echo ${item} >> rest"
                }
            } else {
                error('never')
            }
            env.FIRST = items[0]
            int status = sh(returnStatus: true, script: 'exit 4')
            withEnv(["APPROVER=${approver}", "STATUS=${status}"]) {
                sh 'echo "$APPROVER $STATUS $FIRST" > who'
            }
        }
    """
    build = run_text(_pipeline(_stage("A", steps)), approver="alice")
    ws = build.workspace
    assert build.result == "SUCCESS", build.log
    assert (ws / "sub/dir/here").read_text().strip() == str(ws / "sub/dir")
    assert (ws / "rest").read_text().split() == ["b", "c"]
    assert (ws / "who").read_text().strip() == "alice 4 a"
    assert build.env["FIRST"] == "a"


def test_a_refused_input_aborts_the_build(run_text: Run) -> None:
    steps = "script {\n def who = input(message: 'Go?')\n sh 'touch done'\n}"
    build = run_text(_pipeline(_stage("A", steps)), approver=None)
    assert build.result == "ABORTED" and build.status("A") == "ABORTED"
    assert not (build.workspace / "done").exists()


def test_a_stage_timeout_aborts_a_slow_step(run_text: Run) -> None:
    steps = "sh 'sleep 30'"
    build = run_text(
        _pipeline(_stage("A", steps, extra="options { timeout(time: 1, unit: 'SECONDS') }"))
    )
    assert build.result == "ABORTED"
    assert build.stage("A").reason == "Timeout has been exceeded"


def test_error_and_missing_properties_fail_the_stage(run_text: Run) -> None:
    build = run_text(_pipeline(_stage("A", 'script { echo "${NOPE}" }')))
    assert build.status("A") == "FAILURE"
    assert "No such property: NOPE" in build.stage("A").reason
    build = run_text(_pipeline(_stage("A", "error('quality gate: too low')")))
    assert build.stage("A").reason == "quality gate: too low"


def test_wait_until_with_a_script_body_polls_until_true(run_text: Run) -> None:
    steps = """
        timeout(time: 30, unit: 'SECONDS') {
            waitUntil(initialRecurrencePeriod: 50) {
                script {
                    String n = sh(returnStdout: true, script: 'echo x >> polls; wc -l < polls')
                    return n.trim().toInteger() >= 3
                }
            }
        }
    """
    build = run_text(_pipeline(_stage("A", steps)))
    assert build.result == "SUCCESS", build.log
    assert (build.workspace / "polls").read_text().split() == ["x", "x", "x"]


def test_globals_the_runner_does_not_model_are_refused(run_text: Run) -> None:
    with pytest.raises(JenkinsfileError, match="'currentBuild' is not supported"):
        run_text(_pipeline(_stage("A", "script { currentBuild.result = 'UNSTABLE' }")))


def test_archive_and_junit_are_recorded(run_text: Run) -> None:
    steps = (
        "sh 'mkdir -p runs/x/report && echo r > runs/x/report/a.md'\n"
        "archiveArtifacts artifacts: 'runs/**/report/*', allowEmptyArchive: true\n"
        "junit testResults: 'none/*.xml', allowEmptyResults: true"
    )
    build = run_text(_pipeline(_stage("A", steps)))
    assert build.result == "SUCCESS", build.log
    assert build.archived == ["runs/x/report/a.md"]
    failing = run_text(_pipeline(_stage("A", "archiveArtifacts artifacts: 'none/*'")))
    assert "No artifacts found" in failing.stage("A").reason


def test_processes_left_running_are_listed_and_killed(run_text: Run) -> None:
    steps = "sh 'setsid sleep 300 > /dev/null 2>&1 < /dev/null & echo $! > pid'"
    build = run_text(_pipeline(_stage("A", steps)))
    pid = int((build.workspace / "pid").read_text())
    assert build.result == "SUCCESS", build.log
    assert len(build.killed_processes) == 1  # "PID: command line"; sleep, or bash before exec
    assert build.killed_processes[0].startswith(f"{pid}: ")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_process_marked_dont_kill_me_outlives_the_build(run_text: Run) -> None:
    steps = (
        "sh 'JENKINS_NODE_COOKIE=dontKillMe setsid sleep 300 > /dev/null 2>&1 < /dev/null "
        "& echo $! > pid'"
    )
    build = run_text(_pipeline(_stage("A", steps)))
    pid = int((build.workspace / "pid").read_text())
    try:
        assert build.killed_processes == []
        assert Path(f"/proc/{pid}").exists()
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "pipeline {\n agent any\n stages {\n stage('A') {\n steps {\n parallel a: { sh 'x' }\n"
            "}\n}\n}\n}",
            "step 'parallel' is not supported",
        ),
        (
            "pipeline {\n stages {\n stage('A') {\n steps {\n def x = 1\n}\n}\n}\n}",
            "Expected a step",
        ),
        # nested in a step's own block it is still outside script (jenkinsci/ant-plugin#53)
        (
            "pipeline {\n stages {\n stage('A') {\n steps {\n dir('x') {\n if (true) {\n"
            " sh 'x'\n }\n }\n}\n}\n}\n}",
            "Expected a step",
        ),
        (
            "pipeline {\n stages {\n stage('A') {\n steps {\n timeout(time: 1) {\n"
            " waitUntil {\n return true\n }\n }\n}\n}\n}\n}",
            "Expected a step",
        ),
        (
            "pipeline {\n tools { jdk 'x' }\n stages {\n stage('A') {\n steps {\n sh 'x'\n}\n"
            "}\n}\n}",
            "pipeline directive 'tools'",
        ),
        (
            "pipeline {\n stages {\n stage('A') {\n when { triggeredBy 'x' }\n"
            " steps {\n sh 'x'\n}\n}\n}\n}",
            "when condition 'triggeredBy'",
        ),
        (
            "pipeline {\n options { retry(2) }\n stages {\n stage('A') {\n steps {\n sh 'x'\n"
            "}\n}\n}\n}",
            "option 'retry'",
        ),
        (
            "pipeline {\n stages {\n stage('A') {\n steps { sh 'x' }\n}\n}\n post { changed { "
            "sh 'x' } }\n}",
            "post condition 'changed'",
        ),
        ("node {\n sh 'x'\n}", "one pipeline { ... } block"),
    ],
)
def test_what_the_runner_does_not_understand_is_refused(body: str, message: str) -> None:
    with pytest.raises(JenkinsfileError, match=re.escape(message)):
        load_jenkinsfile(body)


@pytest.mark.parametrize(
    "name",
    [
        "dvc_cml/Jenkinsfile",
        "sagemaker_byo/Jenkinsfile",
        "seldon_kind/Jenkinsfile",
        "watson_openscale/Jenkinsfile",
    ],
)
def test_every_scenario_jenkinsfile_loads(name: str) -> None:
    from mlops_helpers.paths import scenarios_dir

    pipeline = load_jenkinsfile(scenarios_dir() / name)
    # cleanup always runs: in the pipeline's post, or in that of every stage holding an agent
    holders = [s for s in pipeline.stages if s.agent and s.agent.kind != "none"]
    assert pipeline.stages
    assert "always" in pipeline.post or (holders and all("always" in s.post for s in holders))


def test_input_honours_its_submitter(run_text: Run) -> None:
    """Only a named user or a member of a named group can answer; anyone else's answer does
    not count and the input times out (ABORTED)."""
    text = _pipeline(
        _stage(
            "Approve",
            "script {\n"
            "    env.WHO = input(message: 'Go?', submitter: 'admins,boss', "
            "submitterParameter: 'WHO')\n"
            "}\n"
            'echo "approved by ${env.WHO}"',
        )
    )
    member = run_text(text, approver="carol", approver_groups=("admins",))
    assert member.result == "SUCCESS" and "approved by carol" in member.log
    named = run_text(text, approver="boss")
    assert named.result == "SUCCESS"
    outsider = run_text(text, approver="mallory", approver_groups=("developers",))
    assert outsider.result == "ABORTED"
    assert "mallory may not approve (submitter: admins, boss)" in outsider.stage("Approve").reason


def test_a_stage_without_an_agent_has_no_workspace(run_text: Run) -> None:
    """`agent none` at the top and on the stage: no node, so `sh` fails as on Jenkins; an
    input there holds no agent, and a stage's own timeout is the one in force."""
    text = (
        "pipeline {\n    agent none\n    stages {\n"
        + _stage(
            "Wait",
            "input(message: 'Go?')",
            "agent none\noptions { timeout(time: 1, unit: 'DAYS') }",
        )
        + _stage("Work", "sh 'true'", "agent none")
        + "    }\n}\n"
    )
    build = run_text(text)
    (waited,) = [s for s in build.steps if s.step == "input"]
    assert waited.agent is None and waited.timeout is not None and waited.timeout > 23 * 3600
    assert build.status("Work") == "FAILURE"
    assert "Required context class hudson.FilePath is missing" in build.stage("Work").reason


def test_a_pipeline_agent_is_held_through_every_stage(run_text: Run) -> None:
    """A stage's `agent none` does not release the pipeline's agent, and the pipeline's
    timeout bounds a longer stage timeout (it is dead)."""
    text = _pipeline(
        _stage(
            "Wait",
            "input(message: 'Go?')",
            "agent none\noptions { timeout(time: 1, unit: 'DAYS') }",
        ),
        "    options { timeout(time: 2, unit: 'HOURS') }\n",
    )
    build = run_text(text)
    (waited,) = [s for s in build.steps if s.step == "input"]
    assert waited.agent == "any" and waited.timeout is not None and waited.timeout <= 2 * 3600


def test_an_agent_image_the_repository_does_not_build_is_an_error(run_text: Run) -> None:
    text = (
        "pipeline {\n    agent {\n        docker {\n            image 'nowhere/agent:1'\n"
        "        }\n    }\n    stages {\n" + _stage("A", "sh 'true'") + "    }\n}\n"
    )
    with pytest.raises(JenkinsfileError, match="agent image 'nowhere/agent:1' is built by nothing"):
        run_text(text, images={})
    built = run_text(
        text,
        files={"Makefile": "agent-images:\n\tdocker build -t nowhere/agent:1 -f Dockerfile .\n"},
    )
    assert built.result == "SUCCESS"
    missing = text.replace(
        "docker {\n            image 'nowhere/agent:1'",
        "dockerfile {\n            filename 'ci/Dockerfile'",
    )
    with pytest.raises(JenkinsfileError, match="ci/Dockerfile is not in the repository"):
        run_text(missing)


def test_stash_carries_files_to_a_later_stage(run_text: Run) -> None:
    text = _pipeline(
        _stage(
            "Make",
            "sh 'mkdir -p out && echo data > out/a.txt'\nstash name: 'out', includes: 'out/**'",
        )
        + _stage("Use", "sh 'rm -rf out'\nunstash 'out'\nsh 'test \"$(cat out/a.txt)\" = data'")
    )
    build = run_text(text)
    assert build.result == "SUCCESS", build.log
