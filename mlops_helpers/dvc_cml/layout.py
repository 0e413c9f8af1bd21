"""Where one run keeps its things, all under the run directory.

The pipeline works on the *workspace* it is given (Jenkins' ``WORKSPACE`` or the
``workspace`` setting). Only the learner's sandbox (``sandbox.py``) lives here: a project
copied from the template, the bare git repo that plays its hosted origin and the folder that
plays its shared DVC remote.
"""

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
    def sandbox_repo(self) -> Path:
        """The learner's project: the template in a fresh git + DVC repo (the workspace)."""
        return self.run_dir / "project"

    @property
    def origin_git(self) -> Path:
        """The bare git repo that plays the sandbox's hosted origin (GitHub, DagsHub)."""
        return self.run_dir / "origin.git"

    @property
    def origin_remote(self) -> Path:
        """The sandbox's shared DVC remote on the local backend (the cloud backend uses S3)."""
        return self.run_dir / "remotes" / "origin"

    @property
    def ci_cache(self) -> Path:
        """Default CI-local cache remote; it outlives builds, as a volume on the agent would."""
        return self.run_dir / "remotes" / "ci_cache"

    @property
    def report_dir(self) -> Path:
        return self.run_dir / "report"
