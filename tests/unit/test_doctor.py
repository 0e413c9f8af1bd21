"""The doctor covers every scenario and backend, the Python range, and says one verdict."""

from __future__ import annotations

import tomllib

import pytest
from packaging.specifiers import SpecifierSet

from mlops_helpers import doctor
from mlops_helpers.cli import main
from mlops_helpers.doctor import (
    MISSING,
    OK,
    Check,
    python_range_words,
    python_supported,
    scenario_checks,
    verdict,
)
from mlops_helpers.paths import project_root
from mlops_helpers.scenarios import scenario_names

SCENARIOS = scenario_names()


def test_python_range_comes_from_pyproject() -> None:
    pyproject = tomllib.loads((project_root() / "pyproject.toml").read_text())
    spec = pyproject["project"]["requires-python"]
    assert SpecifierSet(doctor.supported_python()) == SpecifierSet(spec)
    assert python_range_words(doctor.supported_python()) == "3.11–3.12"
    assert python_range_words(">=3.11,<3.13") == "3.11–3.12"
    assert python_range_words(">=3.11") == ">=3.11"  # no upper bound: say it as it is
    assert python_supported((3, 12), spec) and python_supported((3, 11), spec)
    assert not python_supported((3, 13), spec) and not python_supported((3, 10), spec)


def test_windows_is_told_to_use_wsl2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor.platform, "system", lambda: "Windows")
    row = doctor._system()
    assert row.status == MISSING and "WSL2" in row.detail
    assert verdict([row]).startswith("NOT READY: fix operating system")


def test_attendee_suffix_is_shown_with_its_source(make_settings) -> None:
    row = doctor._attendee(make_settings("sagemaker_byo"))  # run_root sets MLOPS_ATTENDEE
    assert row.status == OK and "'test'" in row.detail and "MLOPS_ATTENDEE" in row.detail


def _machine(**absent: str) -> list[Check]:
    """A machine that has everything except the rows named in ``absent`` (area=item)."""
    rows = [Check("extras", e, OK, "") for e in ("aws", "ibm", "chameleon", "dvc", "mlflow")]
    rows += [
        Check("tools", t, OK, "")
        for t in (
            "git",
            "kind",
            "helm",
            "kubectl",
            "terraform",
            "ansible-playbook",
            "argo",
            "docker engine",
        )
    ]
    rows += [Check("credentials", c, OK, "") for c in ("aws", "cml", "ibm", "chameleon")]
    rows.append(Check("runtime", "seldon", OK, ""))
    return [
        Check(r.area, r.item, MISSING if absent.get(r.area) == r.item else OK, "") for r in rows
    ]


def test_a_missing_seldon_runtime_blocks_seldon_kind_only() -> None:
    rows = {r.item: r for r in scenario_checks(_machine(runtime="seldon"))}
    assert rows["seldon_kind"].status == MISSING
    assert "local: needs the seldon runtime (make install)" in rows["seldon_kind"].detail
    assert all(rows[s].status == OK for s in SCENARIOS if s != "seldon_kind")
    assert verdict(list(rows.values())).startswith("NOT READY: fix seldon_kind")


def test_absent_credentials_only_limit_the_cloud_backend() -> None:
    rows = {r.item: r for r in scenario_checks(_machine(credentials="ibm"))}
    assert rows["watson_openscale"].status == OK
    assert rows["watson_openscale"].detail == "local: ready; ibm: needs ibm credentials"


def test_doctor_command_prints_one_table_and_one_verdict(capsys) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out.strip().splitlines()
    verdicts = [line for line in out if line.startswith(("READY", "NOT READY"))]
    assert verdicts == [out[-1]]
    assert code == (0 if out[-1].startswith("READY") else 1)
    for scenario in SCENARIOS:
        assert any(line.startswith(f"scenario     {scenario}") for line in out)
    for item in ("attendee suffix", "node", "java", "seldon", "version"):
        assert any(f"  {item} " in line for line in out), item
