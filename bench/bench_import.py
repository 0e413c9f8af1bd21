"""Import time of ``mlops_helpers`` (target: 0.3 s or less), beside bare interpreter start."""

from __future__ import annotations

import subprocess
import sys

from common import summary, timed, write_result

REPEAT = 15


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    bare = timed(lambda: run("pass"), REPEAT)
    package = timed(lambda: run("import mlops_helpers"), REPEAT)
    cli = timed(lambda: run("import mlops_helpers.cli"), REPEAT)
    bare_s, pkg_s, cli_s = summary(bare), summary(package), summary(cli)
    write_result(
        "import",
        {
            "python_startup_s": bare_s,
            "import_mlops_helpers_s": pkg_s,
            "import_mlops_helpers_cli_s": cli_s,
            "import_cost_over_startup_s": pkg_s["median"] - bare_s["median"],
            "target_s": 0.3,
            "meets_target": pkg_s["median"] <= 0.3,
        },
    )


if __name__ == "__main__":
    main()
