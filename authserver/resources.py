"""Where the templates, static files and migrations are at run time.

The repository keeps ``templates/`` and ``migrations/`` at its top level; the
wheel ships them inside the package as ``authserver/templates`` and
``authserver/migrations`` (copied there by ``setup.py`` at build time). An
editable install or a plain checkout has no such copy, so the source tree is
the fallback.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_dir(name: str) -> Path:
    """The directory ``name`` (``"templates"`` or ``"migrations"``) as a real path.

    Alembic and Starlette's ``StaticFiles`` need directories on disk, which a
    wheel installed by pip always provides. Raises ``FileNotFoundError`` naming
    both places looked at when neither holds it (a broken install).
    """
    packaged = Path(str(files("authserver") / name))
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parent.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"authserver is installed without its {name}/ (looked in {packaged} and {source})")
