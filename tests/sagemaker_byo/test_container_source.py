"""The build stage's checks of the container source, its content digest, and the image's
own packages (``image_site``) the local backend runs the programs with."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_helpers.errors import StageError
from mlops_helpers.sagemaker_byo import container, image_site


@pytest.fixture
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "container"
    shutil.copytree(container.container_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_real_container_source_is_ready() -> None:
    assert container.check(container.container_dir()) == []


def test_digest_follows_the_content(source: Path) -> None:
    before = container.digest(source)
    assert container.digest(source) == before
    (source / "program" / "__pycache__").mkdir()
    (source / "program" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert container.digest(source) == before, "caches are not part of the image"
    (source / "program" / "app.py").write_text(
        (source / "program" / "app.py").read_text() + "\n# changed\n"
    )
    assert container.digest(source) != before


def test_problems_are_named(source: Path) -> None:
    (source / "program" / "serve").chmod(0o644)
    (source / "program" / "app.py").write_text("def broken(:\n")
    (source / "Dockerfile").unlink()
    problems = container.check(source)
    assert "missing Dockerfile" in problems
    assert any("serve is not executable" in p for p in problems)
    assert any("app.py does not compile: line 1" in p for p in problems)
    with pytest.raises(StageError, match="is not ready"):
        container.stage_image(source, source.parent / "staged")
    assert not (source.parent / "staged").exists()


def test_the_image_site_holds_what_requirements_txt_installs_and_nothing_of_ours(
    tmp_path: Path,
) -> None:
    site = image_site.link_site(
        container.container_dir() / "requirements.txt", tmp_path / image_site.SITE_DIR
    )
    names = {p.name for p in site.iterdir()}
    assert {"sklearn", "numpy", "scipy", "joblib", "uvicorn", "threadpoolctl.py"} <= names
    assert not names & {"pandas", "pyarrow", "mlflow", "mlops_helpers", "boto3"}
    python, env = image_site.python(site)
    probe = "import importlib.util as u; print([u.find_spec(m) is None for m in %r])"
    done = subprocess.run(
        [*python, "-c", probe % ["sklearn", "uvicorn", "pandas", "mlflow"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["[False,", "False,", "True,", "True]"]


def test_a_requirement_that_is_not_installed_is_named(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=1.26\nno-such-package-here>=1  # a typo\n")
    with pytest.raises(StageError, match="no-such-package-here.*pip install"):
        image_site.link_site(requirements, tmp_path / image_site.SITE_DIR)
    with pytest.raises(StageError, match="run the build stage"):
        image_site.python(tmp_path / image_site.SITE_DIR)


def test_the_image_requirements_are_pinned_to_the_lock_with_everything_they_pull_in() -> None:
    """An unpinned requirements.txt builds a different image each month (and not the
    scikit-learn the local backend trained with): every package the image installs is
    pinned, at the version requirements/project.lock.txt holds."""
    import importlib.util

    from packaging.utils import canonicalize_name

    from mlops_helpers.paths import project_root

    spec = importlib.util.spec_from_file_location(
        "environment_tool", project_root() / "requirements" / "environment.py"
    )
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    locked = {canonicalize_name(k): v for k, v in tool.locked_versions().items()}
    wanted = image_site.read_requirements(container.container_dir() / "requirements.txt")
    pins = {}
    for requirement in wanted:
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{requirement} unpinned"
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    assert {name: locked.get(name) for name in pins} == pins, "pins differ from the lock"
    pulled_in = {canonicalize_name(name) for name in image_site.distributions(wanted)}
    assert pulled_in <= set(pins), f"installed but not pinned: {sorted(pulled_in - set(pins))}"
