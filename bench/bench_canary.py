"""Benchmark: does the continuous_x notebook's canary gate judge fairly on a busy machine?

Runs ``notebooks/05_continuous_x.ipynb`` headless (papermill, as ``mlops-workshop run``
does) ``--runs`` times in a row while one extra process keeps a core busy, and counts the
runs that failed. In each run the gate must let the same-speed version 2 through and refuse
the slow version 3; the gate's figures of both (median latencies of canary and production
in the same window, and their ratio) are recorded per run, so a margin that is too tight
shows before it flakes.

Run: .venv/bin/python bench/bench_canary.py [--runs 20]  ->  bench/results/canary.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import summary, write_result  # noqa: E402

from mlops_helpers.notebooks import run_notebook  # noqa: E402

BUSY = "while True: pass"  # one core kept busy, as another attendee's notebook would


def gate_lines(executed: Path) -> list[str]:
    """Every line the canary gate printed in the executed notebook."""
    nb = json.loads(executed.read_text())
    lines = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            lines += [ln for ln in text.splitlines() if "canary gate passed" in ln]
            lines += [ln for ln in text.splitlines() if ln.startswith("gate failed: canary")]
    return lines


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Failures, told apart: the gate judging wrongly (what this benchmark is about) and a
    run that never reached the gate (a server that did not start in time, say)."""
    reached = [r for r in runs if r["gate"]]
    wrong = [r for r in reached if not r["gate_as_expected"] or r["status"] != "ok"]
    before = [r for r in runs if not r["gate"]]
    print(
        f"{len(wrong)} wrong verdict(s) in {len(reached)} runs that reached the gate; "
        f"{len(before)} run(s) failed before it"
    )
    return {
        "runs": len(runs),
        "failures": len(wrong) + len(before),
        "runs_reaching_the_gate": len(reached),
        "gate_failures": len(wrong),
        "failed_before_the_gate": len(before),
        "errors_before_the_gate": sorted({(r["error"] or "")[:160] for r in before}),
        "notebook_s": summary([r["seconds"] for r in runs]),
        "notebook_s_of_passing_runs": summary([r["seconds"] for r in runs if r["status"] == "ok"])
        if any(r["status"] == "ok" for r in runs)
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLOPS_RUN_ROOT"] = str(Path(tmp) / "runs")
            os.environ["MLOPS_ATTENDEE"] = "bench"
            for i in range(args.runs):
                run = run_notebook("continuous_x", output_dir=Path(tmp) / f"out{i}")
                lines = gate_lines(run.output) if run.output.is_file() else []
                runs.append(
                    {
                        "seconds": round(run.seconds, 1),
                        "status": run.status,
                        "error": run.error,
                        "gate": lines,
                        # v2 passes and v3 is refused: both said, in that order
                        "gate_as_expected": len(lines) == 2
                        and "passed" in lines[0]
                        and lines[1].startswith("gate failed"),
                    }
                )
                print(i + 1, run.status, f"{run.seconds:.1f}s", lines, flush=True)
    finally:
        busy.kill()
        busy.wait()
    write_result(
        "canary",
        {
            "notebook": "05_continuous_x",
            "beside": "one busy core (python busy loop), on a shared 2-core machine",
            "load_average_at_end": os.getloadavg(),
            **summarize(runs),
            "each_run": runs,
        },
    )


if __name__ == "__main__":
    main()
