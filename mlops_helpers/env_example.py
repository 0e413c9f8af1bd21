"""``.env.example``, written from the scenarios' specs (``make env-example``), so the file a
platform engineer copies names exactly the cloud settings the code reads, with their help."""

from __future__ import annotations

import sys

from mlops_helpers.credentials import cloud_uses
from mlops_helpers.scenario import Setting

HEADER = """\
# Copy to .env and fill in what you have. Every line is optional: without cloud settings each
# scenario runs on its local backend. .env is git-ignored; never commit real values.
# Written by `make env-example` from each scenario's spec; `mlops-workshop <scenario> settings`
# lists everything a scenario reads (any of it can be set here as MLOPS_<NAME>).
MLOPS_ATTENDEE=
# MLOPS_RUN_ROOT=runs
"""


def _line(setting: Setting) -> str:
    name = setting.name.upper()
    if setting.default is None:
        return f"{name}="
    return f"# {name}={setting.default}  (the default)"


def render() -> str:
    parts = [HEADER]
    for use in cloud_uses():
        cloud = use.cloud
        lines = [f"# {cloud.name} ({', '.join(use.scenarios)}): {cloud.credentials_help}"]
        if len(cloud.credential_groups) > 1:
            lines.append(f"# credentials: {cloud.credential_names()}")
        lines += [_line(s) for s in cloud.credential_settings()]
        for setting in cloud.settings:
            lines += [f"# {setting.help}", _line(setting)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
