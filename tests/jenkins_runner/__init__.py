"""Run a declarative Jenkinsfile the way Jenkins runs it, so the file itself is what is tested.

Usage::

    from tests.jenkins_runner import UsernamePassword, make_origin, run_jenkinsfile

    origin = make_origin(source_tree, tmp_path / "origin.git", pr_branch="feature",
                         change_pr=lambda tree: (tree / "params.yaml").write_text("..."))
    build = run_jenkinsfile(
        origin, tmp_path / "workspace",
        script_path="Jenkinsfile",            # inside the repository, as in a multibranch job
        change_id=7,                          # a PR build: PR-7, feature -> main
        params={"BACKEND": "local"},          # unknown names or choices are an error
        credentials={"dvc-s3-remote": UsernamePassword("AKIA...", "secret"),
                     "cml-repo-token": "token-value"},
    )
    assert build.result == "SUCCESS", build.log
    assert build.status("Reproduce") == "SUCCESS"
    assert build.stage("Report").steps[0].exit_code == 0
    assert build.post_run == ["always"] and build.killed_processes == []

Import from this package only; its modules each do one job: ``groovy`` (text to syntax
tree), ``declarative`` (the pipeline model ``load_jenkinsfile`` builds and checks),
``evaluate`` (the Groovy of ``script`` blocks), ``steps`` (``sh``, ``withCredentials``,
``input`` ...), ``build`` (stages, ``when``, ``post``, the result), ``agents`` (the images
an agent needs), ``repository`` (origin and checkouts), ``runner`` (``run_jenkinsfile``) and
``stage_calls`` (which scenario stages a Jenkinsfile calls).

What it models of real Jenkins:

- Declarative pipeline semantics (https://www.jenkins.io/doc/book/pipeline/syntax/): one
  ``pipeline`` block; ``parameters`` (string, text, password, booleanParam, choice: unknown
  names or choices are an error), ``environment`` (with ``credentials('id')``: secret text,
  or username/password as ``X``, ``X_USR``, ``X_PSW``), ``options { timeout }``, nested
  ``stages``; a failed stage skips the later ones; ``post`` blocks (pipeline and stage level:
  always, aborted, failure, success, unstable, unsuccessful, cleanup) run in Jenkins' order;
  ``when``: ``branch``, ``changeRequest``, ``expression``, ``environment``, ``buildingTag``,
  ``tag``, ``not``/``allOf``/``anyOf``. Outside ``script``, every statement must be a step
  ("Expected a step"), as Jenkins' declarative validator demands.
- ``sh`` (https://www.jenkins.io/doc/pipeline/steps/workflow-durable-task-step/): every
  ``sh`` step is its own ``sh -xe`` process, and that ``sh`` is dash, as on a Debian agent
  (no ``pipefail``: a command failing inside a pipe or a ``$(...)`` that feeds one goes
  unseen, exactly as on Jenkins); a script with its own ``#!`` runs as it says; it starts in
  the workspace (or ``dir``) with its output written to a file as the durable task does (so
  a server it starts may outlive the step); ``returnStdout``/``returnStatus``.
- The job's environment
  (https://www.jenkins.io/doc/book/pipeline/jenkinsfile/#using-environment-variables):
  ``WORKSPACE``, ``BRANCH_NAME``, ``CHANGE_*`` (PR builds only),
  ``BUILD_NUMBER``, ``BUILD_ID``, ``JOB_NAME``, ``BUILD_URL``, ``GIT_COMMIT``, ``GIT_BRANCH``,
  ``GIT_URL``, every parameter, then the ``environment`` directive. The agent's own
  environment is small (``PATH``, ``HOME``, locale, a git identity) plus ``agent_env``;
  nothing else leaks in from the test process. ``PATH`` starts with the running
  interpreter's ``bin`` directory, so ``mlops-workshop`` and ``python`` are this project's.
- Credentials (https://www.jenkins.io/doc/pipeline/steps/credentials-binding/): only those
  passed exist, as on a fresh Jenkins, and a step binding a missing one fails ("Could not
  find credentials entry"). ``withCredentials`` bindings (``usernamePassword``, ``string``,
  ``file``) exist as variables only inside their block; every bound value is masked as
  ``****`` in the recorded log, steps and environment.
- ``input`` (https://www.jenkins.io/doc/pipeline/steps/pipeline-input-step/): answered by
  ``approver`` when ``submitter`` names that user or one of ``approver_groups`` (anyone, when
  it names nobody); otherwise never answered, so the build is ABORTED, as when its timeout
  ends; ``approver=None`` rejects it.
- Agents: an ``agent`` whose image the repository does not build (``make agent-images``), or
  whose ``dockerfile``/``yamlFile`` is not in the checkout, is an error; a stage with no agent
  (``agent none`` at the top and on the stage) has no workspace, so ``sh`` fails there; a
  pipeline-level agent is held through every stage, also while ``input`` waits.
- Multibranch checkouts and PR/fork refs (https://plugins.jenkins.io/github-branch-source/):
  the workspace is a real ``git clone`` of a bare ``origin``, checked out on a detached HEAD
  at the built commit, as the Git plugin does; a second build in the same workspace fetches
  and checks out again, keeping untracked files. A PR build fetches only
  ``refs/pull/<id>/head`` and its target and merges them (``pr_strategy="head"``: unmerged);
  a PR from a fork sets ``CHANGE_FORK`` and its branch is never fetched by name.
- ``script`` blocks: a Groovy subset (``def``/typed declarations, ``if``/``else``,
  ``env.X = ...``, closures with ``each``/``collect``/``findAll``, string, list and map
  methods, ``withEnv``, ``timeout``, ``waitUntil``, ``error``, files and stashes). ``echo``,
  ``archiveArtifacts`` and ``junit`` are recorded.
- At the end of the build, Jenkins' ProcessTreeKiller
  (https://www.jenkins.io/doc/book/using/spawning-processes/): every process still carrying
  this build's ``JENKINS_NODE_COOKIE`` is listed in ``killed_processes`` and killed.

What it does not model (each is refused with a ``JenkinsfileError`` naming the line, never
guessed): scripted pipelines (``node { }``), ``parallel`` and ``matrix``, ``tools``,
``input`` with ``parameters``, ``retry``/``sleep``, shared libraries, the ``currentBuild``,
``scm`` and ``docker`` globals, Groovy loops and ``try``/``catch``, post conditions that need
a build history (``changed``, ``fixed``, ``regression``). Not modelled at all: containers
(a ``docker``/``kubernetes``/``dockerfile`` agent's steps run on this machine; only its
image is checked to exist), several nodes (one workspace; ``stash``/``unstash`` copy files),
``triggers`` (when a build runs does not change what it runs), tag builds, junit report
parsing (so no UNSTABLE), CPS durability (resuming after a restart) and the script-security
sandbox (https://www.jenkins.io/doc/book/managing/script-approval/).

Groovy failures at run time (an unknown property, ``error``, a non-zero ``sh``) fail the
stage, as in Jenkins.
"""

from __future__ import annotations

from tests.jenkins_runner.agents import AgentImage, agent_images, check_agents
from tests.jenkins_runner.credentials import MASK, Credential, SecretFile, UsernamePassword
from tests.jenkins_runner.declarative import JenkinsfileError, PipelineDef, load_jenkinsfile
from tests.jenkins_runner.groovy import (
    Binary,
    Block,
    Call,
    Cast,
    Decl,
    Elvis,
    ExprStmt,
    GroovySyntaxError,
    Literal,
    MethodCall,
    Name,
    Node,
    Prop,
    Str,
    Ternary,
    parse,
    parse_expression,
    walk,
)
from tests.jenkins_runner.records import BuildResult, StageRecord, StepRecord
from tests.jenkins_runner.repository import Origin, checkout, make_origin, project_tree
from tests.jenkins_runner.runner import run_jenkinsfile
from tests.jenkins_runner.stage_calls import assert_stages_match, jenkinsfile_stage_calls
from tests.jenkins_runner.steps import posix_sh

__all__ = [
    # running a Jenkinsfile
    "MASK",
    "BuildResult",
    "Credential",
    "JenkinsfileError",
    "Origin",
    "SecretFile",
    "StageRecord",
    "StepRecord",
    "UsernamePassword",
    "checkout",
    "make_origin",
    "posix_sh",
    "project_tree",
    "run_jenkinsfile",
    # reading a Jenkinsfile
    "AgentImage",
    "PipelineDef",
    "agent_images",
    "assert_stages_match",
    "check_agents",
    "jenkinsfile_stage_calls",
    "load_jenkinsfile",
    # its Groovy syntax tree
    "Binary",
    "Block",
    "Call",
    "Cast",
    "Decl",
    "Elvis",
    "ExprStmt",
    "GroovySyntaxError",
    "Literal",
    "MethodCall",
    "Name",
    "Node",
    "Prop",
    "Str",
    "Ternary",
    "parse",
    "parse_expression",
    "walk",
]
