"""Where one run keeps its things, all under the run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_helpers import paths


def template_dir() -> Path:
    """The model project's repository template (``scenarios/dvc_cml``)."""
    return paths.scenarios_dir() / "dvc_cml"


@dataclass(frozen=True)
class Layout:
    run_dir: Path

    @property
    def repo(self) -> Path:
        """The working repo: what a Jenkins agent checks out for the pull request."""
        return self.run_dir / "repo"

    @property
    def origin_git(self) -> Path:
        """The bare git repo that plays the hosted origin (GitHub, DagsHub)."""
        return self.run_dir / "origin.git"

    @property
    def origin_remote(self) -> Path:
        """The shared DVC remote of the local backend (the cloud backend uses S3)."""
        return self.run_dir / "remotes" / "origin"

    @property
    def cache_remote(self) -> Path:
        """The CI-local cache remote; it outlives a run, as a volume on the agent would."""
        return self.run_dir / "remotes" / "ci_cache"

    @property
    def report_dir(self) -> Path:
        return self.run_dir / "report"
