"""A small, dependency-free fuzzer for the project's own HTTP endpoints.

Every endpoint we write must answer malformed input with a 4xx and a JSON message, never a
5xx, never a 2xx whose body claims to be JSON but is not (``NaN`` is not JSON), and it must
keep serving afterwards. ``fuzz_endpoint`` sends the generic cases built from one valid
example body, plus any endpoint-specific ones, and reports what broke those rules.

    report = fuzz_endpoint(f"{base}/invocations", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert report.n5xx == 0 and not report.bad, report.bad
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

JSON = {"Content-Type": "application/json"}
_HOLE = "\x00fuzz-hole\x00"


@dataclass(frozen=True)
class Case:
    """One request: ``path_suffix`` is appended to the endpoint URL."""

    name: str
    method: str = "POST"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    path_suffix: str = ""


def _map_leaves(value: Any, numbers: Callable[[Any], Any], strings: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _map_leaves(v, numbers, strings) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_leaves(v, numbers, strings) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return numbers(value)
    if isinstance(value, str):
        return strings(value)
    return value


def _numbers_as(example: Any, raw: str) -> bytes:
    """The example with every number replaced by the literal text ``raw`` (may be non-JSON)."""
    text = json.dumps(_map_leaves(example, lambda _: _HOLE, lambda s: s))
    return text.replace(json.dumps(_HOLE), raw).encode()


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def _has_numbers(example: Any) -> bool:
    found: list[Any] = []
    _map_leaves(example, lambda n: found.append(n) or n, lambda s: s)
    return bool(found)


def generic_cases(example: Any) -> list[Case]:
    """Malformed requests that every JSON endpoint must refuse politely."""
    deep = 100_000
    cases = [
        Case("not json", body=b"{not json"),
        Case("empty body", body=b""),
        Case("invalid utf-8", body=b"\xff\xfe\xfd"),
        Case("json null", body=b"null"),
        Case("json string", body=b'"hello"'),
        Case("json number", body=b"1"),
        Case("empty object", body=b"{}"),
        Case("empty list", body=b"[]"),
        Case("nested 100k deep", body=b"[" * deep + b"]" * deep),
        Case("nested object 100k deep", body=b'{"a":' * deep + b"1" + b"}" * deep),
        Case("wrong content type", body=_body(example), headers={"Content-Type": "text/plain"}),
        Case(
            "form data",
            body=b"a=1&b=2",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        Case("trailing garbage", body=_body(example) + b"}}"),
    ]
    if _has_numbers(example):
        for name, raw in [
            ("400-digit integer", "9" * 400),
            ("-400-digit integer", "-" + "9" * 400),
            ("1e308", "1e308"),
            ("-1e308", "-1e308"),
            ("1e309 (inf in Python)", "1e309"),
            ("NaN literal", "NaN"),
            ("Infinity literal", "Infinity"),
            ("-Infinity literal", "-Infinity"),
            ("underscore digits 1_0", "1_0"),
            ('string "nan"', '"nan"'),
            ('string "inf"', '"inf"'),
            ('string "abc"', '"abc"'),
            ("true for numbers", "true"),
            ("null for numbers", "null"),
            ("object for numbers", '{"x": 1}'),
        ]:
            cases.append(Case(f"numbers → {name}", body=_numbers_as(example, raw)))
    if isinstance(example, dict):
        for key in example:
            cases.append(
                Case(
                    f"missing field {key!r}",
                    body=_body({k: v for k, v in example.items() if k != key}),
                )
            )
            cases.append(
                Case(f"field {key!r} wrong type", body=_body({**example, key: "wrong type"}))
            )
        cases.append(Case("extra unknown field", body=_body({**example, "zz_unknown": 1})))
        cases.append(
            Case(
                "10,000 unknown fields",
                body=_body({**example, **{f"k{i}": i for i in range(10_000)}}),
            )
        )
    cases.append(Case("1 MB string", body=_body({"data": "x" * 1_000_000})))
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        cases.append(Case(f"method {method}", method=method, body=None, headers={}))
    return cases


@dataclass
class FuzzReport:
    url: str
    cases: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    def _count(self, low: int, high: int) -> int:
        return sum(n for code, n in self.status_counts.items() if low <= code < high)

    @property
    def n2xx(self) -> int:
        return self._count(200, 300)

    @property
    def n4xx(self) -> int:
        return self._count(400, 500)

    @property
    def n5xx(self) -> int:
        return self._count(500, 600)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cases": self.cases,
            "2xx": self.n2xx,
            "4xx": self.n4xx,
            "5xx": self.n5xx,
            "bad": list(self.bad),
        }


def _strict_json(text: str) -> None:
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    json.loads(text, parse_constant=refuse)


def _judge(case: Case, response: requests.Response) -> str | None:
    """What is wrong with this answer, or None."""
    code = response.status_code
    if code >= 500:
        return f"{case.name}: {code} {response.text[:120]!r}"
    claims_json = "json" in response.headers.get("Content-Type", "")
    must_be_json = code >= 400 or claims_json
    if must_be_json:
        try:
            _strict_json(response.text)
        except ValueError as exc:
            return (
                f"{case.name}: {code} with a body that is not JSON ({exc}): {response.text[:120]!r}"
            )
    return None


def fuzz_endpoint(
    url: str, example: Any, extra: Sequence[Case] = (), method: str = "POST", timeout: float = 10.0
) -> FuzzReport:
    """Send the generic cases plus ``extra`` to ``url``; then check the example still works."""
    report = FuzzReport(url)
    with requests.Session() as session:
        for case in [*generic_cases(example), *extra]:
            verb = method if case.method == "POST" else case.method
            report.cases += 1
            try:
                response = session.request(
                    verb,
                    url + case.path_suffix,
                    data=case.body,
                    headers=case.headers,
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                report.bad.append(f"{case.name}: no answer ({type(exc).__name__})")
                continue
            report.status_counts[response.status_code] = (
                report.status_counts.get(response.status_code, 0) + 1
            )
            problem = _judge(case, response)
            if problem:
                report.bad.append(problem)
        try:
            alive = session.request(method, url, data=_body(example), headers=JSON, timeout=timeout)
            if not 200 <= alive.status_code < 300:
                report.bad.append(f"valid example afterwards: {alive.status_code}")
        except requests.RequestException as exc:
            report.bad.append(f"valid example afterwards: no answer ({type(exc).__name__})")
    return report
