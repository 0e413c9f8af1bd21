"""What each stage's result was made from, so no stage builds on a result made from other
inputs.

After a stage succeeds, ``record_provenance`` keeps in the run's state the values of the
settings it declares as ``inputs`` and what its ``fingerprint`` computes (a code digest).
Before a stage runs, ``refuse_stale_inputs`` walks back through the stages it ``uses`` (and
the ones those use): if one of them was made from other inputs than the ones given now, the
stage refuses and names the stage to run again. (The stale stage itself can always run: it
rebuilds and records anew.) Which result a stage then takes (a model's digest, say) is each
scenario's own check.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from mlops_helpers.errors import StageError

if TYPE_CHECKING:
    from mlops_helpers.pipeline import Pipeline, StageContext

STATE_KEY = "provenance"


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def current_inputs(pipeline: Pipeline, name: str, ctx: StageContext) -> dict[str, Any]:
    """The stage's inputs as the settings (and its fingerprint) give them now."""
    stage = pipeline.stage(name)
    values = {
        key: json.loads(json.dumps(ctx.settings.get(key, pipeline.defaults.get(key)), default=str))
        for key in stage.inputs
    }
    if stage.fingerprint is not None:
        values.update(stage.fingerprint(ctx))
    return values


def record_provenance(
    pipeline: Pipeline, name: str, ctx: StageContext, result: dict[str, Any]
) -> None:
    stage = pipeline.stage(name)
    if not (stage.inputs or stage.uses or stage.fingerprint):
        return
    records = ctx.state.get(STATE_KEY) or {}
    records[name] = {"inputs": current_inputs(pipeline, name, ctx), "result": _digest(result)}
    ctx.state.update(**{STATE_KEY: records})


def _why_stale(
    pipeline: Pipeline, name: str, ctx: StageContext, records: dict[str, Any]
) -> tuple[str, str] | None:
    """(the earliest stage to run again, why) when ``name``'s recorded result, or one it was
    made from, no longer matches the inputs given now; None when all match."""
    record = records.get(name)
    if record is None:  # never ran (the stage itself says what it misses) or ran before this
        return None
    for used in pipeline.stage(name).uses:
        earlier = _why_stale(pipeline, used, ctx, records)
        if earlier is not None:
            return earlier
    now = current_inputs(pipeline, name, ctx)
    for key, value in now.items():
        if key in record["inputs"] and record["inputs"][key] != value:
            return name, (
                f"{name} ran with {key}={record['inputs'][key]!r}, and these settings say "
                f"{key}={value!r}"
            )
    return None


def refuse_stale_inputs(pipeline: Pipeline, name: str, ctx: StageContext) -> None:
    """Raise when a stage ``name`` uses was made from other inputs than the ones given now."""
    records = ctx.state.get(STATE_KEY) or {}
    for used in pipeline.stage(name).uses:
        stale = _why_stale(pipeline, used, ctx, records)
        if stale is not None:
            rerun, why = stale
            order = pipeline.stage_names()
            between = order[order.index(rerun) : order.index(name)]
            raise StageError(
                f"{name} would use a result made from other inputs: {why}. Run "
                f"{' then '.join(between)} again first"
            )
