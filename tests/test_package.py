"""The package carries its templates, static files and migrations (``scripts/wheel-check``
installs the real wheel and starts it; these are the quick checks of the same parts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from authserver.resources import resource_dir

ROOT = Path(__file__).resolve().parent.parent


def test_resource_dirs_hold_templates_static_files_and_migrations():
    templates = resource_dir("templates")
    migrations = resource_dir("migrations")
    assert (templates / "layout.html").is_file() and (templates / "static" / "style.css").is_file()
    assert (migrations / "env.py").is_file() and any((migrations / "versions").glob("0001_*.py"))


def test_missing_resource_names_both_places():
    with pytest.raises(FileNotFoundError, match=r"without its nothing-here/ \(looked in .*authserver/nothing-here"):
        resource_dir("nothing-here")


def test_build_copies_templates_and_migrations_into_the_package(tmp_path):
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    package = tmp_path / "authserver"
    shipped = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert {"templates/layout.html", "templates/login.html", "templates/static/style.css",
            "migrations/env.py", "migrations/script.py.mako", "migrations/versions/0001_initial.py",
            "security/data/common-passwords.txt", "resources.py", "templates/mail/letter.html",
            "templates/mail/letter.txt", "locale/fr/LC_MESSAGES/messages.po",
            "locale/de/LC_MESSAGES/messages.po"} <= shipped
    assert not [name for name in shipped if "__pycache__" in name or name.endswith(".pyc")]
