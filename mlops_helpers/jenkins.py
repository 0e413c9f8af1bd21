"""Read a Jenkinsfile's stage calls, so a test can keep it in step with the CLI's stages."""

from __future__ import annotations

import re
from pathlib import Path

_CALL = re.compile(r"mlops-workshop\s+(?P<scenario>[a-z_]+)\s+(?P<stage>[a-z_]+)")
_POST = re.compile(r"\bpost\s*\{")


def _post_blocks(text: str) -> list[tuple[int, int]]:
    """Where the ``post { ... }`` blocks are (start, end offsets), by brace matching."""
    spans = []
    for match in _POST.finditer(text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        spans.append((match.start(), end))
    return spans


def jenkinsfile_stage_calls(path: Path, scenario: str) -> list[str]:
    """Stage names in the order the Jenkinsfile first calls ``mlops-workshop SCENARIO STAGE``;
    what ``post`` blocks call (cleanup) runs after a stage's work, so it comes last."""
    text = Path(path).read_text()
    posts = _post_blocks(text)
    steps: list[str] = []
    after: list[str] = []
    for match in _CALL.finditer(text):
        stage = match["stage"]
        if match["scenario"] != scenario or stage == "stages":
            continue
        in_post = any(start <= match.start() <= end for start, end in posts)
        (after if in_post else steps).append(stage)
    seen: list[str] = []
    for stage in steps + after:
        if stage not in seen:
            seen.append(stage)
    return seen
