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
        text("workspace", "the checkout CI builds (default: a sandbox project)"),
        text("change_id", "the pull request's number (Jenkins CHANGE_ID)"),
        text("change_target", "the pull request's target branch (CHANGE_TARGET)"),
        text("change_branch", "the pull request's branch (CHANGE_BRANCH)"),
        text("change_fork", "the fork a pull request comes from (CHANGE_FORK)"),
        text("build_number", "the CI build's number (BUILD_NUMBER)"),
        text("target_branch", "the branch pull requests merge into", "main"),
        text("origin_remote", "the git remote CI pushes to", "origin"),
        text("cache_remote", "the DVC remote CI's cache uses", "jenkins_local"),
        text("ci_cache", "a DVC cache folder shared by builds"),
        text("feature_branch", "the demo pull request's branch", "tune-c"),
        text("feature_params", "the demo pull request's parameter change", "train.C=0.05"),
        seconds("dvc_timeout", 300.0, "how long one dvc command may take"),
        text("s3_endpoint_url", "an S3 endpoint to use instead of AWS's"),
        text("aws_session_token", "a temporary AWS credential's session token"),
    ),
)
