"""Which cloud accounts the installed scenarios' backends need. Names only: values are never
shown. Each scenario declares its clouds in its spec; this collects them once each."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_helpers.scenario import Cloud


@dataclass(frozen=True)
class CloudUse:
    """A cloud account and the scenarios with a backend that needs it."""

    cloud: Cloud
    scenarios: tuple[str, ...]

    @property
    def meaning_when_absent(self) -> str:
        if self.cloud.meaning_when_absent:
            return self.cloud.meaning_when_absent
        names = " and ".join(self.scenarios)
        return f"{names} run{'s' if len(self.scenarios) == 1 else ''} on the local backend only"


def cloud_uses() -> list[CloudUse]:
    """Every cloud any installed scenario needs, in scenario order, each once."""
    from mlops_helpers.scenarios import all_scenarios

    clouds: dict[str, Cloud] = {}
    users: dict[str, list[str]] = {}
    for spec in all_scenarios().values():
        for cloud in spec.clouds():
            if clouds.setdefault(cloud.name, cloud) != cloud:
                raise ValueError(f"cloud '{cloud.name}' is declared twice, differently")
            users.setdefault(cloud.name, []).append(spec.name)
    return [CloudUse(clouds[name], tuple(users[name])) for name in clouds]
