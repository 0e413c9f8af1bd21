"""What every backend of this scenario does; the stages only talk to this interface.

A backend decides where the shared ``origin`` DVC remote lives, how CI gets credentials
for it, and where the pull-request report goes. The git/DVC work is the same for all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mlops_helpers.dvc_cml.layout import Layout
from mlops_helpers.dvc_cml.shell import Shell
from mlops_helpers.pipeline import StageContext


class DvcCmlBackend(ABC):
    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.layout = Layout(ctx.run_dir)

    @abstractmethod
    def origin_url(self) -> str:
        """URL of the shared DVC remote named ``origin``."""

    @abstractmethod
    def reset_origin(self) -> None:
        """Start a fresh run with an empty shared remote (where that is ours to empty)."""

    @abstractmethod
    def write_credentials(self, shell: Shell, remote: str) -> list[str]:
        """``dvc remote modify --local`` what the remote needs; returns the option names.

        The cleanup stage unsets exactly these options again (see ``stages.py``).
        """

    @abstractmethod
    def post_report(self, report: Any) -> str:
        """Publish the Markdown report (a PR comment when possible); says where it went."""

    def describe(self) -> str:
        return f"{type(self).__name__}: origin remote {self.origin_url()}"
