"""The GitOps repo: a bare remote, environment folders, change branches, approvals, reverts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.seldon_kind.gitops import GitOpsRepo


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return GitOpsRepo(tmp_path / "gitops").ensure()


def test_ensure_is_idempotent(repo: GitOpsRepo) -> None:
    head = repo.head()
    again = GitOpsRepo(repo.root).ensure()
    assert again.head() == head
    assert len(repo.log()) == 1 and repo.read_environment("staging") == {}


def test_commit_only_when_something_changed(repo: GitOpsRepo) -> None:
    repo.write_environment("staging", {"a.yaml": "kind: A\n"})
    first = repo.commit_and_push("staging: a")
    assert first and repo.head() == first
    repo.write_environment("staging", {"a.yaml": "kind: A\n"})
    assert repo.commit_and_push("staging: a again") is None
    assert repo.read_environment("staging") == {"a.yaml": "kind: A\n"}


def test_a_change_branch_does_not_touch_main_until_merged(repo: GitOpsRepo) -> None:
    before = repo.head()
    repo.start_branch("promote-x")
    repo.write_environment("production", {"a.yaml": "kind: A\n"})
    repo.commit_and_push("promote", "promote-x")
    repo.sync_main()
    assert repo.head() == before and repo.read_environment("production") == {}
    assert repo.read_environment("production", "promote-x") == {"a.yaml": "kind: A\n"}
    merge = repo.merge_change("promote-x", "alice", "Merge promote-x")
    assert repo.head() == merge and repo.read_environment("production") == {"a.yaml": "kind: A\n"}
    body = subprocess.run(
        ["git", f"--git-dir={repo.remote}", "log", "-1", "--format=%B%n%cn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Approved-by: alice" in body and body.strip().endswith("alice")
    assert "promote-x" not in repo.branches()


def test_revert_restores_the_previous_folder(repo: GitOpsRepo) -> None:
    repo.write_environment("staging", {"a.yaml": "v: 1\n"})
    repo.commit_and_push("v1")
    repo.write_environment("staging", {"a.yaml": "v: 2\n"})
    repo.commit_and_push("v2")
    reverted, _ = repo.revert_last("staging")
    assert reverted.subject == "v2"
    assert repo.read_environment("staging") == {"a.yaml": "v: 1\n"}


def test_nothing_to_revert_says_so(repo: GitOpsRepo) -> None:
    with pytest.raises(StageError, match="nothing to roll back"):
        repo.revert_last("production")
