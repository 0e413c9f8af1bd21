"""`make test` from a fresh clone: wall time, pass/fail counts and the slowest tests.

Each run git-clones the project (its committed HEAD; the shared folder beside it, as CI has
it), runs ``make install`` and ``make tools``
(timed apart: set-up is bench_setup.py's subject), then ``make test`` with a JUnit report, and
records the wall time, the counts, the slowest tests and, on a failure, the failing tests.
Five runs answer "green five times out of five"; ``--busy N`` runs the last N of them beside
a process that keeps one core busy (the machine "also busy"), and the time target is judged on
the quiet runs only.

    python bench/bench_tests.py [--repeat 5] [--busy 2] [--keep]

This runs the whole suite: run it on a quiet machine, not beside other work you care about.
Target (issue 16): `make test` 300 s or less, green every time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from common import remove_tree, summary, write_result

from mlops_helpers.paths import project_root

TARGET_S = 300.0


def junit_summary(report: Path) -> dict[str, Any]:
    root = ET.parse(report).getroot()
    cases = []
    why: dict[str, str] = {}  # a failed test -> the end of its report (what a maintainer reads)
    for case in root.iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in {"failure", "error"}:
                outcome = "failed"
                text = f"{child.get('message') or ''}\n{child.text or ''}"
                why[f"{case.get('classname')}::{case.get('name')}"] = text[-3000:]
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        cases.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "seconds": float(case.get("time") or 0),
                "outcome": outcome,
            }
        )
    counts = {
        k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "skipped")
    }
    return {
        "counts": counts,
        "slowest": sorted(cases, key=lambda c: -c["seconds"])[:25],
        "failed": [c["test"] for c in cases if c["outcome"] == "failed"],
        "why": why,
    }


def xdist_workers(output: str) -> int | None:
    """How many workers the run had, from xdist's header ("4 workers [792 items]")."""
    found = re.search(r"^(\d+) workers \[", output, re.M)
    return int(found.group(1)) if found else None


BURN = "while True: pass"  # one core's worth of someone else's work


@contextlib.contextmanager
def busy_core(on: bool):
    burner = subprocess.Popen([sys.executable, "-c", BURN]) if on else None
    try:
        yield
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()


def one_run(source: Path, work: Path, keep: bool, busy: bool = False) -> dict[str, Any]:
    clone = work / "clone"
    # a git clone, as CI checks out: tests need the history (the Jenkins-shaped builds and
    # the room clone the project), so commit what you want measured
    work.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    if (source.parent / "shared").is_dir():  # the team's shared folder sits beside a checkout
        shutil.copytree(source.parent / "shared", work / "shared")
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    for target in ("install", "tools"):
        subprocess.run(["make", target], cwd=clone, env=env, check=True, capture_output=True)
    setup_s = time.perf_counter() - t0
    report = work / "junit.xml"
    start = time.perf_counter()
    with busy_core(busy):
        done = subprocess.run(
            ["make", "test", f"PYTEST_ARGS=--junitxml={report} -p no:cacheprovider"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "make_test_s": seconds,
        "setup_s": setup_s,
        "busy": busy,
        "exit_code": done.returncode,
        "last_lines": done.stdout.strip().splitlines()[-3:],
        "workers": xdist_workers(done.stdout),
    }
    if report.is_file():
        result.update(junit_summary(report))
    label = "make test (one core busy)" if busy else "make test"
    print(
        f"{label}: exit {done.returncode} in {seconds:.0f}s {result.get('counts', '(no report)')}",
        flush=True,
    )
    for name in result.get("failed", []):
        print(f"  failed: {name}", flush=True)
        print("    " + result["why"].get(name, "").strip().replace("\n", "\n    "), flush=True)
    if not keep:
        remove_tree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--busy", type=int, default=0, help="how many runs (the last ones) go beside a busy core"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tests-"))
    runs = [
        one_run(project_root(), tmp / f"run-{i}", args.keep, busy=i >= args.repeat - args.busy)
        for i in range(args.repeat)
    ]
    if not args.keep:
        remove_tree(tmp)
    quiet = [r["make_test_s"] for r in runs if not r["busy"]] or [r["make_test_s"] for r in runs]
    median = summary(quiet)["median"]
    write_result(
        "tests",
        {
            "runs": runs,
            "make_test_s": summary(quiet),
            "make_test_busy_s": summary(busy)
            if (busy := [r["make_test_s"] for r in runs if r["busy"]])
            else None,
            "green": sum(1 for r in runs if r["exit_code"] == 0),
            "green_while_busy": sum(1 for r in runs if r["busy"] and r["exit_code"] == 0),
            "of": len(runs),
            "target_s": TARGET_S,
            "within_target": median <= TARGET_S,
            "workers": runs[0].get("workers"),
            "cores": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
