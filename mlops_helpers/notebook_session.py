"""The notebooks' front end to a scenario: run a stage, show a failure as one line, start over.

    session = Session(PIPELINE, backend=backend, min_accuracy=min_accuracy)
    ctx, run, reset = session.ctx, session.run, session.reset
    run("train")                       # one stage with the notebook's settings
    run("revert", revert_environment="canary")   # ... with one setting changed

A stage that fails shows the same one line as the command line (``gate failed: ...`` or
``error: ...``), with what to run next in notebook words, and the full traceback one click
away (a collapsed block below it). Stop (KeyboardInterrupt) shows ``error: interrupted``.
Nothing is torn down when a stage fails in a notebook someone is looking at: the platform
stays up to look at and roll back. When the kernel ends, whatever is still running stops;
headless (papermill through ``mlops-workshop run``, where nobody is looking) a failure tears
down at once, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import os
import traceback
from collections.abc import Mapping
from typing import Any

from mlops_helpers.config import mask_text
from mlops_helpers.errors import WorkshopError, error_line
from mlops_helpers.pipeline import Pipeline, StageContext
from mlops_helpers.progress import read_progress

HEADLESS_ENV = "MLOPS_HEADLESS"  # set by the notebook runner for the kernels it starts
_STAGE_MARK = "mlops_stage"  # attribute a failing stage's exception carries


def headless() -> bool:
    return os.environ.get(HEADLESS_ENV, "") == "1"


def notebook_line(exc: BaseException, secrets: list[Any] | None = None) -> str:
    """The command line's one line, with the next step in notebook words."""
    line = error_line(exc)
    stage = getattr(exc, _STAGE_MARK, None)
    if isinstance(exc, KeyboardInterrupt) and stage:
        line += f": {stage} stopped before it finished; run it again when you are ready"
    step = getattr(exc, "next_step", None)
    if step is not None:
        line = f"{line.rstrip('.')}. {step.for_notebook()}"
    return mask_text(line, secrets or [])


class Session:
    """One scenario's stages, run from a notebook with the notebook's settings."""

    def __init__(self, pipeline: Pipeline, **settings: Any) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.ctx = pipeline.context(**settings)
        _SECRETS.extend(self.ctx.settings.secrets())
        install_error_display()
        atexit.register(self._stop_leftovers)
        print(self.where())

    def where(self) -> str:
        """Where the scenario's state lives and what an earlier session left there."""
        done = [
            stage
            for stage, record in read_progress(self.ctx.run_dir).items()
            if record["status"] == "done" and stage != self.pipeline.cleanup_stage
        ]
        text = (
            f"state of this scenario: {self.ctx.run_dir} (kept between kernels; "
            f"reset() stops what runs and starts over)"
        )
        if done:
            text += (
                f"\nan earlier session ran: {', '.join(done)}; a stage reuses those results "
                f"only where they were made from the same settings"
            )
        return text

    def context(self, **knobs: Any) -> StageContext:
        """The notebook's context, or one with some settings changed."""
        return self.pipeline.context(**{**self.settings, **knobs}) if knobs else self.ctx

    def run(self, stage: str, context: StageContext | None = None, **knobs: Any) -> Any:
        """Run one stage (with ``knobs`` changing settings for this run only)."""
        ctx = context or self.context(**knobs)
        try:
            return self.pipeline.run_stage(stage, ctx)
        except BaseException as exc:
            with contextlib.suppress(AttributeError):  # a few built-in types take none
                setattr(exc, _STAGE_MARK, stage)
            if headless() and self.pipeline.cleanup_stage:  # nobody is here to look
                self._stop_leftovers()
            raise

    def result(self, stage: str) -> Any:
        """What ``stage`` returned when it last ran (kept in the run's state, so a cell can
        use it without the cell that ran the stage, after a restart too)."""
        from mlops_helpers.errors import StageError

        results = self.ctx.state.get("results") or {}
        if stage not in results:
            raise StageError(f"{stage} has not run in {self.ctx.run_dir} yet: run {stage} first")
        return results[stage]

    def need(self, key: str, stage: str) -> Any:
        """A value of the run's state that ``stage`` writes, or a one-line error naming it."""
        from mlops_helpers.errors import StageError

        value = self.ctx.state.get(key)
        if value is None:
            raise StageError(f"no {key.replace('_', ' ')} in {self.ctx.run_dir}: run {stage} first")
        return value

    def refused(self, stage: str, context: StageContext | None = None, **knobs: Any) -> str | None:
        """Run a gate we expect to say no and show its reason (None: it said yes this time,
        say because the stage before it has run since). Safe to run twice, in any order."""
        try:  # not self.run: a refusal shown on purpose tears nothing down, headless neither
            self.pipeline.run_stage(stage, context or self.context(**knobs))
        except WorkshopError as exc:  # a gate, or a service refusing a request
            line = notebook_line(exc, _SECRETS)
            print(line)
            return line
        print(f"{stage} passed this time: what it checks is in order now")
        return None

    def reset(self) -> str:
        """Stop everything this scenario runs and forget its state: start over."""
        message = self.pipeline.reset(self.ctx)
        print(message)
        return message

    def _stop_leftovers(self) -> None:
        if self.pipeline.cleanup_stage and self.ctx.run_dir.exists() and self.ctx.tracker.list():
            try:
                self.pipeline.run_stage(self.pipeline.cleanup_stage, self.ctx)
            except Exception as exc:  # noqa: BLE001  (report, keep the first error on top)
                self.ctx.say(f"cleanup after failure also failed: {exc}")


# -- showing a failure in the notebook --------------------------------------------------------
_PENDING: list[str] = []  # tracebacks to show (collapsed) once the failing cell has ended
_SECRETS: list[Any] = []  # every session's secrets, masked in what a failure shows


def _ours(value: BaseException) -> bool:
    """A failure the workshop explains in one line: ours, a stage's, or Stop."""
    return isinstance(value, WorkshopError | KeyboardInterrupt) or hasattr(value, _STAGE_MARK)


def _handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """IPython's custom exception handler: our failures as one line, the rest as usual."""
    if not _ours(value):  # the learner's own code: IPython's usual traceback
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return
    tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb  # IPython's own frame
    _PENDING.append("".join(traceback.format_exception(etype, value, tb)))
    # the error output (and the reply papermill reads) carry the one line only
    shell._showtraceback(etype, value, [notebook_line(value, _SECRETS)])


def _show_pending(*_: Any) -> None:
    """After the failing cell: its full traceback, collapsed, below the one line."""
    from IPython.display import display

    while _PENDING:
        text = mask_text(_PENDING.pop(0), _SECRETS)
        bundle: Mapping[str, str] = {
            "text/html": (
                "<details><summary>full traceback (click to open)</summary>"
                f"<pre>{html.escape(text)}</pre></details>"
            ),
            "text/plain": "full traceback (open it in JupyterLab): "
            + text.strip().splitlines()[-1],
        }
        display(bundle, raw=True)


def install_error_display() -> None:
    """In an IPython kernel: failures of stages show as one line (once per kernel)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_mlops_errors", False):
        return
    shell.set_custom_exc((Exception, KeyboardInterrupt), _handler)
    shell.events.register("post_run_cell", _show_pending)
    shell._mlops_errors = True
