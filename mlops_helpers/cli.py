"""``mlops-workshop``: the doctor, the notebook runner and one stage at a time.

    mlops-workshop doctor
    mlops-workshop run [NAME ...] [--backend B] [-p KEY VALUE ...]
    mlops-workshop diagrams
    mlops-workshop SCENARIO stages
    mlops-workshop SCENARIO STAGE [--backend B] [-p KEY VALUE ...]

The Jenkinsfiles' ``sh`` steps call the last form, so Jenkins and the notebooks run the
very same stage code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from mlops_helpers import SCENARIOS
from mlops_helpers.errors import GateFailed, WorkshopError


def _value(text: str) -> Any:
    """Parse a -p value the way papermill does: YAML scalars (1, 0.8, true), else text."""
    import yaml

    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, (int, float, bool, str)) else text


def _params(pairs: list[list[str]] | None) -> dict[str, Any]:
    return {key: _value(value) for key, value in (pairs or [])}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=None, help="backend name (default: local)")
    parser.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                        help="a setting or notebook parameter; may be repeated")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-workshop", description="MLOps CI/CD workshop: doctor, notebooks, stages.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("doctor", help="check this machine (tools, extras, credentials)")
    run = sub.add_parser("run", help="run notebooks headless with papermill into build/")
    run.add_argument("names", nargs="*", help="preflight, seldon_kind, ... (default: all)")
    run.add_argument("--output-dir", default=None, help="where executed notebooks go")
    _add_common(run)
    sub.add_parser("diagrams", help="draw every scenario's pipeline diagram into images/")
    for scenario in SCENARIOS:
        sp = sub.add_parser(scenario, help=f"run one stage of {scenario} ('stages' lists them)")
        sp.add_argument("stage", help="a stage name, or 'stages' to list them")
        _add_common(sp)
    return parser


def cmd_doctor() -> int:
    from mlops_helpers.doctor import format_table, run_checks

    print(format_table(run_checks()))
    print("\nabsent items only limit what can run here; every local backend needs none of them")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_helpers.notebooks import existing_notebooks, find_notebook, run_notebook

    names = args.names or existing_notebooks()
    for name in names:
        find_notebook(name)  # refuse an unknown name before running anything
    failures = []
    for name in names:
        print(f"running {name} ...", flush=True)
        result = run_notebook(name, backend=args.backend or "local", params=_params(args.param),
                              output_dir=Path(args.output_dir) if args.output_dir else None)
        status = "FAILED" if result.error else "ok"
        print(f"  {status} in {result.seconds:.1f}s -> {result.output}", flush=True)
        if result.error:
            print(f"  {result.error}", file=sys.stderr, flush=True)
            failures.append(result.error)
    if failures:
        print(f"\n{len(failures)} notebook(s) failed:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    return 0


def cmd_diagrams() -> int:
    from mlops_helpers.plots import draw_pipeline
    from mlops_helpers.scenarios import available_scenarios, load_pipeline

    for scenario in available_scenarios():
        print(draw_pipeline(load_pipeline(scenario)))
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from mlops_helpers.scenarios import load_pipeline

    pipeline = load_pipeline(args.command)
    if args.stage == "stages":
        print("\n".join(pipeline.stage_names()))
        return 0
    pipeline.stage(args.stage)  # unknown stage: clear error before any work
    params = _params(args.param)
    if args.backend:
        params["backend"] = args.backend
    ctx = pipeline.context(**params)
    result = pipeline.run_stage(args.stage, ctx)
    if result:
        print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "doctor":
            return cmd_doctor()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "diagrams":
            return cmd_diagrams()
        return cmd_stage(args)
    except GateFailed as exc:
        print(f"gate failed: {exc}", file=sys.stderr)
        return 1
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, KeyError) else 1


if __name__ == "__main__":
    sys.exit(main())
