"""``mlops-workshop``: the doctor, the notebook runner and one stage at a time.

    mlops-workshop doctor
    mlops-workshop run [NAME ...] [--backend B] [-p KEY VALUE ...]
    mlops-workshop diagrams
    mlops-workshop SCENARIO stages
    mlops-workshop SCENARIO STAGE [--backend B] [-p KEY VALUE ...]

The Jenkinsfiles' ``sh`` steps call the last form, so Jenkins and the notebooks run the
very same stage code. Any failure is one line on stderr (``error: ...``, secrets masked);
``--debug`` (or ``MLOPS_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from mlops_helpers.errors import GateFailed, WorkshopError
from mlops_helpers.scenario import format_settings
from mlops_helpers.scenarios import all_scenarios


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


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the traceback of a failure (also: MLOPS_DEBUG=1)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=None, help="backend name (default: local)")
    parser.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        help="a setting or notebook parameter; may be repeated",
    )
    _add_debug(parser, argparse.SUPPRESS)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (the usage stays one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops-workshop", description="MLOps CI/CD workshop: doctor, notebooks, stages."
    )
    _add_debug(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("doctor", help="check this machine (tools, extras, credentials)")
    run = sub.add_parser("run", help="run notebooks headless with papermill into build/")
    run.add_argument("names", nargs="*", help="preflight, seldon_kind, ... (default: all)")
    run.add_argument("--output-dir", default=None, help="where executed notebooks go")
    run.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run at once")
    _add_common(run)
    sub.add_parser("diagrams", help="draw every scenario's pipeline diagram into images/")
    hub = sub.add_parser("hub", help="serve the workshop room: JupyterHub for every attendee")
    hub.add_argument(
        "action",
        nargs="?",
        choices=["start", "stop"],
        default="start",
        help="start (default): serve the room until Ctrl-C; stop: end the room in --room-dir",
    )
    hub.add_argument("--port", type=int, default=None, help="the room's port (default: free)")
    hub.add_argument("--room-dir", default="runs/room", help="hub state and attendees' homes")
    hub.add_argument(
        "--ip",
        default="127.0.0.1",
        help="where attendees reach the room (0.0.0.0: this machine's network)",
    )
    hub.add_argument(
        "--instructor",
        action="append",
        default=None,
        help="an instructor's sign-in name (repeatable; default: instructor)",
    )
    hub.add_argument(
        "--mem-limit", default="2G", help="memory per attendee, enforced (default: 2G)"
    )
    hub.add_argument(
        "--cpu-limit", type=float, default=1.0, help="CPU cores per attendee (default: 1)"
    )
    hub.add_argument(
        "--shared-user",
        action="store_true",
        help="not root: let every attendee in as this user (NOT kept apart; said at start)",
    )
    for scenario in all_scenarios():
        sp = sub.add_parser(scenario, help=f"run one stage of {scenario} ('stages' lists them)")
        sp.add_argument(
            "stage",
            help="a stage name, 'stages' to list them, 'settings' to list what it reads, "
            "or 'reset' to start over",
        )
        _add_common(sp)
    return parser


def cmd_doctor() -> int:
    from mlops_helpers.doctor import format_report, ready, run_checks

    checks = run_checks()
    print(format_report(checks))
    return 0 if ready(checks) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlops_helpers.notebooks import (
        NotebookRun,
        existing_notebooks,
        find_notebook,
        format_summary,
        params_per_notebook,
        run_notebooks,
    )

    names = args.names or existing_notebooks()
    for name in names:
        find_notebook(name)  # refuse an unknown name before running anything
    per_notebook = params_per_notebook(names, _params(args.param))  # and an unknown -p name
    count = 0

    def started(name: str) -> None:  # one at a time: the line ends when the notebook does
        print(f"[{count + 1}/{len(names)}] {name} ...", end="", flush=True)

    def finished(result: NotebookRun) -> None:
        nonlocal count
        count += 1
        head = "" if args.jobs <= 1 else f"[{count}/{len(names)}] {result.name} ..."
        print(f"{head} {result.status} in {result.seconds:.1f}s", flush=True)
        if result.error:
            print(f"  {result.error}", file=sys.stderr, flush=True)

    runs = run_notebooks(
        names,
        backend=args.backend or "local",
        params=per_notebook,
        output_dir=Path(args.output_dir) if args.output_dir else None,
        jobs=args.jobs,
        started=started,
        finished=finished,
    )
    print("\n" + format_summary(runs), flush=True)
    return 1 if any(r.error for r in runs) else 0


def cmd_diagrams() -> int:
    from mlops_helpers.plots import draw_pipeline

    for spec in all_scenarios().values():
        print(draw_pipeline(spec.pipeline()))
    return 0


def cmd_hub(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from mlops_helpers.room.hub import serve_room, stop_room

    if args.action == "stop":
        stop_room(Path(args.room_dir))
        return 0
    serve_room(
        Path(args.room_dir),
        args.port,
        args.instructor or ["instructor"],
        os.environ.get("MLOPS_WORKSHOP_CODE") or None,
        ip=args.ip,
        shared_user=args.shared_user,
        mem_limit=args.mem_limit,
        cpu_limit=args.cpu_limit,
    )
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from mlops_helpers.scenarios import load_pipeline

    pipeline = load_pipeline(args.command)
    if args.stage == "stages":
        print("\n".join(pipeline.stage_names()))
        return 0
    if args.stage == "settings":
        from mlops_helpers.scenarios import get_scenario

        print(format_settings(get_scenario(args.command)))
        return 0
    if args.stage != "reset":  # reset is no stage: it stops what runs and forgets the state
        pipeline.stage(args.stage)  # unknown stage: clear error before any work
    params = pipeline.validate_params(_params(args.param))  # unknown name, bad type or range
    if args.backend:
        params["backend"] = args.backend
    settings = pipeline.settings(**params)
    settings.check(pipeline.known_settings())  # also what comes from the environment or .env
    ctx = pipeline.context(settings)
    if args.stage == "reset":
        print(pipeline.reset(ctx))
        return 0
    result = pipeline.run_stage(args.stage, ctx)
    if result:
        print(json.dumps(result, indent=2, default=str))
    return 0


_DEBUG_HINT = " (run again with --debug for the traceback)"


def _one_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The error's one line (``error_line``) with its next step in command-line words, every
    known secret masked."""
    from mlops_helpers.config import Settings, mask_text
    from mlops_helpers.errors import error_line

    text = error_line(exc)
    step = getattr(exc, "next_step", None)
    if step is not None and args.command in all_scenarios():
        text = f"{text.rstrip('.')}. {step.for_cli(args.command)}"
    try:
        secrets = Settings.load("cli", params=_params(getattr(args, "param", None))).secrets()
    except Exception:  # masking must never hide the error itself
        secrets = []
    return mask_text(text, secrets)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (Jenkins aborting a build, ``kill``) ends a stage like Ctrl-C: recorded as
    interrupted in progress.json, one line on stderr."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("MLOPS_DEBUG", "") in {
        "1",
        "true",
        "yes",
    }
    try:
        if args.command == "doctor":
            return cmd_doctor()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "diagrams":
            return cmd_diagrams()
        if args.command == "hub":
            return cmd_hub(args)
        return cmd_stage(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug or isinstance(exc, WorkshopError) else _DEBUG_HINT
        print(f"{_one_line(exc, args)}{hint}", file=sys.stderr)
        if isinstance(exc, WorkshopError) and not isinstance(exc, GateFailed):
            return 2 if isinstance(exc, KeyError) else 1
        return 1


if __name__ == "__main__":
    sys.exit(main())
