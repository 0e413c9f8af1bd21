"""A registry of backends per scenario: register by name, look up by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mlops_helpers.errors import UnknownNameError

B = TypeVar("B")


class BackendRegistry(Generic[B]):
    """Maps a backend name ('local', 'aws', 'kind', ...) to the class that implements it."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._classes: dict[str, Callable[..., B]] = {}

    def register(self, name: str) -> Callable[[Callable[..., B]], Callable[..., B]]:
        def add(cls: Callable[..., B]) -> Callable[..., B]:
            if name in self._classes:
                raise ValueError(f"{self.scenario}: backend '{name}' is registered twice")
            self._classes[name] = cls
            return cls

        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> Callable[..., B]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownNameError(f"{self.scenario} backend", name, self.names()) from None

    def create(self, name: str, *args: object, **kwargs: object) -> B:
        return self.get(name)(*args, **kwargs)
