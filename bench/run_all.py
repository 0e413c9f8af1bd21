"""Run every benchmark in bench/ (import, notebooks, then each scenario's own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = [HERE / "bench_import.py", HERE / "bench_notebooks.py",
               *sorted(p for p in HERE.glob("bench_*.py")
                       if p.name not in {"bench_import.py", "bench_notebooks.py"})]
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
