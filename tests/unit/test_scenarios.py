"""Every scenario: the CLI lists its stages, cleanup comes last, its diagram is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_helpers.cli import main
from mlops_helpers.paths import images_dir
from mlops_helpers.plots import draw_pipeline
from mlops_helpers.scenarios import load_pipeline, scenario_names

SCENARIOS = scenario_names()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cli_lists_the_pipeline_stages(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([scenario, "stages"]) == 0
    names = capsys.readouterr().out.split()
    pipeline = load_pipeline(scenario)
    assert names == pipeline.stage_names()
    assert len(set(names)) == len(names), "stage names must be unique"
    assert names[-1] == "cleanup", "every scenario ends with a cleanup stage"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_unknown_stage_is_refused_with_the_known_ones(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([scenario, "no_such_stage"]) == 2
    err = capsys.readouterr().err
    assert "unknown" in err and "cleanup" in err


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_committed_diagram_is_drawn_from_the_stage_list(scenario: str, tmp_path: Path) -> None:
    committed = images_dir() / f"{scenario}_pipeline.png"
    assert committed.is_file(), f"run `make diagrams` to draw {committed.name}"
    fresh = draw_pipeline(load_pipeline(scenario), tmp_path / committed.name)
    assert fresh.read_bytes() == committed.read_bytes(), (
        f"{committed} no longer matches the stage list: run `make diagrams`"
    )


def test_unknown_scenario_backend_lists_known(make_settings) -> None:
    if not SCENARIOS:
        pytest.skip("no scenario built yet")
    pipeline = load_pipeline(SCENARIOS[0])
    ctx = pipeline.context(settings=make_settings(SCENARIOS[0], backend="nowhere"))
    with pytest.raises(KeyError, match="known: .*local"):
        _ = ctx.backend
