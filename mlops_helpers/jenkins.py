"""Read a Jenkinsfile's stage calls, so a test can keep it in step with the CLI's stages."""

from __future__ import annotations

import re
from pathlib import Path

_CALL = re.compile(r"mlops-workshop\s+(?P<scenario>[a-z_]+)\s+(?P<stage>[a-z_]+)")


def jenkinsfile_stage_calls(path: Path, scenario: str) -> list[str]:
    """Stage names in the order the Jenkinsfile first calls ``mlops-workshop SCENARIO STAGE``."""
    seen: list[str] = []
    for match in _CALL.finditer(Path(path).read_text()):
        stage = match["stage"]
        if match["scenario"] == scenario and stage != "stages" and stage not in seen:
            seen.append(stage)
    return seen
