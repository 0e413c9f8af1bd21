"""The toy scenario, declared: what it reads, where it runs, its pipeline and notebook."""

from __future__ import annotations

from pathlib import Path

from mlops_helpers.scenario import Backend, Scenario, count, text

SCENARIO = Scenario(
    name="toy",
    title="A toy greeting pipeline",
    notebook=str(Path(__file__).with_name("99_toy.ipynb")),
    pipeline_module="toy_workshop.stages",
    backends=(Backend("local", "a file in the run folder"),),
    settings=(
        text("greeting", "the word to repeat", "hello"),
        count("repeats", 3, "how many times the greeting is written"),
        count("min_words", 2, "the gate: the fewest words the greeting must have"),
    ),
)
