"""Fresh clone to the first notebook running, and installs from the lock that agree.

Each run copies the project as a clone would get it (tracked and new files, nothing ignored:
no .venv, .venvs, .tools, runs, build), runs ``make install``, then runs the preflight
notebook, and records: install seconds, seconds until the first notebook starts and until it
is done, sizes, and both environments' ``pip freeze``. Warm: the machine's package cache as
it is (the first warm run fills it). Cold: an empty uv cache and no pip cache (the local
index mirrors this machine has configured for pip stay in use; say so when you quote it).

    python bench/bench_setup.py [--repeat 3] [--cold] [--keep]

Targets (issue 16): fresh clone to the first notebook running 60 s or less with a warm cache;
two installs from the lock give identical ``pip freeze``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import fresh_copy, remove_tree, summary, write_result

from mlops_helpers.paths import project_root

TARGET_S = 60.0
FIRST_NOTEBOOK = "preflight"


def freeze(python: Path) -> list[str]:
    done = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(done.stdout.splitlines())


def size_mb(path: Path) -> float:
    done = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[0])


def first_notebook(clone: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds until the runner says the notebook started, until it is done; its status."""
    start = time.perf_counter()
    started = None
    with subprocess.Popen(
        [str(clone / ".venv/bin/mlops-workshop"), "run", FIRST_NOTEBOOK],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        stderr=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        output = []
        while chunk := proc.stdout.read(1):
            output.append(chunk)
            if started is None and "".join(output[-4:]) == " ...":
                started = time.perf_counter() - start
    done = time.perf_counter() - start
    status = "ok" if proc.returncode == 0 else f"FAILED: {''.join(output)[-300:]}"
    return started if started is not None else done, done, status


def one_setup(source: Path, work: Path, cold: bool, keep: bool) -> dict[str, Any]:
    clone = work / "clone"
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as under make (the Makefile unexports it)
    if cold:
        env["UV_CACHE_DIR"] = str(work / "uv-cache")
        env["MLOPS_TOOLS_CACHE"] = str(work / "tools-cache")  # uv itself installed afresh too
        env["PIP_NO_CACHE_DIR"] = "1"
    t0 = time.perf_counter()
    fresh_copy(source, clone)
    copied = time.perf_counter() - t0
    install = subprocess.run(
        ["make", "install"], cwd=clone, env=env, capture_output=True, text=True
    )
    installed = time.perf_counter() - t0
    if install.returncode != 0:
        raise RuntimeError(
            f"make install failed:\n{install.stdout[-2000:]}\n{install.stderr[-2000:]}"
        )
    env["MLOPS_RUN_ROOT"] = str(work / "runs")
    started, done, status = first_notebook(clone, env)
    result = {
        "copy_s": copied,
        "make_install_s": installed,
        "first_notebook_started_s": installed + started,
        "first_notebook_done_s": installed + done,
        "first_notebook_status": status,
        "venv_mb": size_mb(clone / ".venv"),
        "seldon_runtime_mb": size_mb(clone / ".venvs"),
        "freeze": freeze(clone / ".venv/bin/python"),
        "seldon_freeze": freeze(clone / ".venvs/seldon/bin/python"),
        "install_output": install.stdout.strip().splitlines(),
    }
    print(
        f"{'cold' if cold else 'warm'}: install {installed:.1f}s, first notebook started at "
        f"{result['first_notebook_started_s']:.1f}s, done at "
        f"{result['first_notebook_done_s']:.1f}s ({status})",
        flush=True,
    )
    if not keep:
        remove_tree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="warm runs")
    parser.add_argument("--cold", action="store_true", help="also one run with empty caches")
    parser.add_argument("--keep", action="store_true", help="keep the clones (debugging)")
    args = parser.parse_args()
    source = project_root()
    runs: list[dict[str, Any]] = []
    cold: dict[str, Any] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-setup-"))
    if args.cold:
        cold = one_setup(source, tmp / "cold", cold=True, keep=args.keep)
    for attempt in range(args.repeat):
        runs.append(one_setup(source, tmp / f"warm-{attempt}", cold=False, keep=args.keep))
    if not args.keep:
        remove_tree(tmp)
    freezes = [r.pop("freeze") for r in runs] + ([cold.pop("freeze")] if cold else [])
    seldon = [r.pop("seldon_freeze") for r in runs] + ([cold.pop("seldon_freeze")] if cold else [])
    started = [r["first_notebook_started_s"] for r in runs]
    write_result(
        "setup",
        {
            "warm_runs": runs,
            "warm": {
                key: summary([r[key] for r in runs])
                for key in ("make_install_s", "first_notebook_started_s", "first_notebook_done_s")
            },
            "cold": cold,
            "target_s": TARGET_S,
            "warm_within_target": summary(started)["median"] <= TARGET_S,
            "identical_freeze": all(f == freezes[0] for f in freezes),
            "identical_seldon_freeze": all(f == seldon[0] for f in seldon),
            "installs_compared": len(freezes),
            "packages": len(freezes[0]),
            "seldon_packages": len(seldon[0]),
            "load_average_at_end": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
