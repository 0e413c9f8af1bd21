"""What every backend of this scenario does; the stages only talk to this interface.

A backend decides where the shared ``origin`` DVC remote lives, which credentials a DVC
command gets for it (through its environment only: nothing is written to disk), and where
the pull-request report goes. The git/DVC work is the same for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.pipeline import StageContext


class DvcCmlBackend(ABC):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.layout = Layout(ctx.run_dir)

    @abstractmethod
    def validate(self) -> None:
        """Raise ``ConfigError`` naming every missing setting or credential, before any
        stage does work (called first by the stages that use the remote)."""

    @abstractmethod
    def sandbox_origin_url(self) -> str:
        """URL of the shared DVC remote a learner's sandbox project is created with."""

    @abstractmethod
    def prepare_sandbox_origin(self) -> None:
        """Make the sandbox's shared remote exist (where it is ours to make)."""

    @abstractmethod
    def remote_env(self) -> dict[str, str]:
        """Environment variables a DVC command needs to reach the shared remote."""

    @abstractmethod
    def check_origin_url(self, url: str) -> None:
        """Refuse a workspace whose ``origin`` remote this backend cannot serve."""

    @abstractmethod
    def post_report(self, report: Any, target: str, repo: Path) -> str:
        """Publish the Markdown report (a PR comment when possible); says where it went."""

    def describe(self) -> str:
        return f"{type(self).__name__}"
