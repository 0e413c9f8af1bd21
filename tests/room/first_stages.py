"""A scenario notebook cut to its first stages and its last cell (cleanup or teardown).

The room's tests need real stage progress from each attendee (the grid shows what their runs
wrote), not the whole lesson: the notebook tests run every scenario notebook in full."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nbformat


def _source(cell: dict[str, Any]) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def first_stages(
    notebook: dict[str, Any], last_stage: str, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The cells through the one that runs ``last_stage``, then a code cell for each of
    ``extra``, then the notebook's last code cell, which releases what the run started."""
    cells = notebook["cells"]
    last = next((i for i, c in enumerate(cells) if f'run("{last_stage}")' in _source(c)), None)
    assert last is not None, f'no cell runs run("{last_stage}")'
    closing = [c for c in cells if c["cell_type"] == "code"][-1]
    assert "cleanup" in _source(closing) or "teardown" in _source(closing), _source(closing)
    added = [nbformat.v4.new_code_cell(code) for code in extra]
    return {**notebook, "cells": [*cells[: last + 1], *added, closing]}
