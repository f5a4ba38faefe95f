"""Ship the top-level ``templates/`` and ``migrations/`` inside the wheel.

They stay at the repository's top level for people and tools (Alembic, editors);
the wheel carries them as ``authserver/templates`` and ``authserver/migrations``,
where ``authserver.resources.resource_dir`` finds them. Everything else is in
``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("templates", "migrations")


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "authserver" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithResources})
