"""The credentials a build may bind, as Jenkins' Credentials plugin stores them, and the
mask every bound value gets in recorded output."""

from __future__ import annotations

from dataclasses import dataclass

MASK = "****"


@dataclass(frozen=True)
class UsernamePassword:
    username: str
    password: str


@dataclass(frozen=True)
class SecretFile:
    content: str | bytes
    filename: str = "secret.txt"


Credential = str | UsernamePassword | SecretFile  # a plain str is a "secret text"
