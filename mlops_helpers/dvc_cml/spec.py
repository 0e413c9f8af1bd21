"""dvc_cml, declared: its settings, backends, pipeline and notebook."""

from __future__ import annotations

from mlops_helpers.clouds import AWS
from mlops_helpers.scenario import Backend, Cloud, Scenario, Tool, seconds, text

CML = Cloud(
    "cml",
    (("repo_token",),),
    "a token CML posts the report with (GitHub, GitLab or Bitbucket)",
    (text("cml_target", "where the report goes: pr, pr/<n>, commit/<sha> or auto"),),
    "the dvc_cml report is written to a file instead of posted as a PR comment",
)
GIT = Tool("git", "git is needed by the GitOps and DVC scenarios")

SCENARIO = Scenario(
    name="dvc_cml",
    title="DVC + CML in Jenkins",
    notebook="04_dvc_cml.ipynb",
    pipeline_module="mlops_helpers.dvc_cml.stages",
    exercises_module="mlops_helpers.exercises.dvc_cml",
    backends=(
        Backend(
            "local", "a sandbox project: git + DVC, bare origin, folder remotes", ("dvc",), (GIT,)
        ),
        Backend("s3", "the DVC remote on S3", ("dvc", "aws"), (GIT,), cloud=AWS),
        Backend(
            "aws",
            "the DVC remote on S3, the report posted with CML",
            ("dvc", "aws"),
            (GIT,),
            cloud=AWS,
            uses=(CML,),
        ),
    ),
    settings=(
        text(
            "workspace",
            "the git + DVC checkout every stage works on (Jenkins sets WORKSPACE; the notebook "
            "passes its sandbox)",
        ),
        text("change_id", "the pull request's number on a PR build (Jenkins' CHANGE_ID)"),
        text("change_target", "the branch the pull request merges into (CHANGE_TARGET)"),
        text("change_branch", "the pull request's own branch (CHANGE_BRANCH)"),
        text("change_fork", "the fork the pull request comes from, if any (CHANGE_FORK)"),
        text("build_number", "the CI build's number, named in CI's dvc.lock commit (BUILD_NUMBER)"),
        text(
            "target_branch",
            "the branch a branch build compares with (a PR build: CHANGE_TARGET)",
            "main",
        ),
        text("origin_remote", "the DVC remote the team shares, as the repo names it", "origin"),
        text(
            "cache_remote",
            "the CI agent's own DVC cache remote, in .dvc/config.local",
            "jenkins_local",
        ),
        text("ci_cache", "the CI cache remote's folder (default: <run folder>/remotes/ci_cache)"),
        text(
            "cml_target",
            "where cml posts the report: pr, pr/<n>, commit/<sha> or auto (default: "
            "pr/<CHANGE_ID>, else auto)",
        ),
        text(
            "feature_branch",
            "the sandbox pull request's branch (your initials are added)",
            "tune-c",
        ),
        text(
            "feature_params",
            "what the sandbox pull request changes in params.yaml: stage.name=value, ...",
            "train.C=0.05",
        ),
        seconds("dvc_timeout", 300.0, "how long any one git or dvc command may take"),
        text("repo_token", "the GitHub/GitLab token cml posts the report with"),
        text("dvc_s3_url", "the S3 URL of the shared DVC remote (s3 backend), s3://bucket/prefix"),
        text("aws_region", "the AWS region of the DVC remote's bucket"),
        text(
            "s3_endpoint_url",
            "an S3-compatible endpoint (MinIO, DagsHub) instead of AWS's, http(s)://...",
        ),
        text("aws_session_token", "the session token of a temporary AWS credential"),
    ),
)
