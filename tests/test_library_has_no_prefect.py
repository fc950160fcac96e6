"""The library imports no Prefect: it must run (and be tested) without it."""

import pkgutil
import subprocess
import sys

import liftshift


def test_importing_every_liftshift_module_does_not_import_prefect():
    modules = [m.name for m in pkgutil.walk_packages(liftshift.__path__, "liftshift.")]
    assert "liftshift.transfer" in modules and "liftshift.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_command_line_starts_without_great_expectations():
    # GX takes seconds to import: `liftshift --help` or `status` should not wait for it.
    code = "import sys, liftshift.cli\nprint('great_expectations' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
