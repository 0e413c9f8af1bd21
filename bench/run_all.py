"""Run every benchmark in bench/ (import, notebooks, each scenario's own, then the set-up and
the whole test suite from a fresh clone, which take longest).

    python bench/run_all.py [bench_x.py ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = ["bench_import.py", "bench_notebooks.py"]
LAST = ["bench_setup.py", "bench_tests.py"]


def main() -> int:
    scenario = sorted(p.name for p in HERE.glob("bench_*.py") if p.name not in FIRST + LAST)
    names = sys.argv[1:] or [*FIRST, *scenario, *LAST]
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)], cwd=HERE).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
