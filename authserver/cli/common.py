"""What every ``authserver`` command shares: parser plumbing, the :class:`Context`
a command runs with, output (text or ``--json``) and the one error path.

Exit statuses: 0 done; 2 bad input or an environment the command cannot use
(one line ``error: <reason>`` on stderr); 1 a bug (one line saying so, the
trace only with ``--debug`` or ``AUTHSERVER_LOG_LEVEL=debug``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TypeAlias

import redis
import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
import structlog

from authserver.context import Context
from authserver.db import import_models
from authserver.errors import AppError
from authserver.keys.service import KeyError_
from authserver.logging import configure_logging
from authserver.security.passwords import WeakPasswordError
from authserver.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_BUG = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
ACTOR = "cli"
"""Who the audit trail names for changes made from the command line."""

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Json: TypeAlias = "Mapping[str, object] | Sequence[object]"

log = structlog.get_logger("authserver.cli")


class CliError(AppError):
    """Bad input caught by the command line itself; printed as one ``error:`` line."""

    status_code = 400
    error = "invalid_request"


BAD_INPUT: tuple[type[Exception], ...] = (AppError, SettingsError, WeakPasswordError, KeyError_)
"""Errors whose message is the reason to show: the app's own, and the few from
outside the AppError hierarchy that describe the operator's input."""


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors take the one error path."""

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


# -- parser plumbing ----------------------------------------------------------


def command(sub: SubParsers, name: str, handler: Handler, help: str, *,
            json: bool = False) -> argparse.ArgumentParser:
    """Add ``name`` running ``handler``; ``json=True`` adds ``--json``."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler)
    if json:
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def group(sub: SubParsers, name: str, help: str) -> SubParsers:
    """Add a noun (``users``, ``clients``…) whose verbs are added to the result."""
    parser = sub.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


# -- running a command --------------------------------------------------------


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv``, run the command's handler and turn every failure into an exit status."""
    debug = False
    try:
        args = parser.parse_args(argv)
        debug = bool(args.debug)
        handler: Handler = args.handler
        return handler(args)
    except SystemExit as exc:  # --help, or uvicorn giving up at start-up
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_BUG)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        message = describe_error(exc)
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
            return EXIT_ERROR
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        else:
            log.debug("cli_unexpected_error", exc_info=exc)
        print(f"error: unexpected {type(exc).__name__}: this is a bug; run again with --debug "
              "(or AUTHSERVER_LOG_LEVEL=debug) to see where", file=sys.stderr)
        return EXIT_BUG


def describe_error(exc: BaseException) -> str | None:
    """The one line shown for bad input or an unusable environment, or None for a bug.

    Database errors are described from the driver's first line only:
    SQLAlchemy's own text carries the statement parameters (password and
    secret hashes).
    """
    if isinstance(exc, BAD_INPUT):
        return str(exc) or type(exc).__name__
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig if exc.orig is not None else exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        lowered = first.lower()
        if (
            "no such table" in lowered
            or "no such column" in lowered
            or type(orig).__name__ in ("UndefinedTable", "UndefinedColumn")
        ):
            return "the database schema is missing or out of date; run `authserver migrate`"
        if isinstance(exc, sa_exc.IntegrityError):
            return f"conflicts with existing data: {first}"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return f"cannot use the database: {first}"
        return None
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"cannot use Redis (AUTHSERVER_REDIS_URL): {type(exc).__name__}"
    if isinstance(exc, OSError):  # a key directory or file the operator pointed at
        return str(exc)
    return None


def load_settings(*, serving: bool = False) -> Settings:
    """Settings from the environment; a command other than ``serve`` logs warnings and
    errors only (its audit events still reach the audit table), unless at debug level."""
    settings = Settings.from_env()
    level = settings.log_level
    if not serving and level == "info":
        level = "warning"
    configure_logging(settings.log_format, level)
    return settings


@contextmanager
def open_context(*, need_database: bool = True, serving: bool = False) -> Iterator[Context]:
    """Settings and a :class:`Context`; refuses a SQLite file that does not exist yet
    (a command run from the wrong directory would otherwise make an empty one)."""
    settings = load_settings(serving=serving)
    if need_database:
        require_sqlite_file(settings.database_url)
    import_models()
    ctx = Context(settings)
    try:
        yield ctx
    finally:
        ctx.close()


def require_sqlite_file(database_url: str) -> None:
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).exists():
        raise CliError(
            f"no database at {url.database} (AUTHSERVER_DATABASE_URL; working directory {Path.cwd()}); "
            "run `authserver migrate` (or `authserver serve`) first"
        )


# -- output ---------------------------------------------------------------------


def when(value: dt.datetime | int | None) -> str:
    """A timestamp as ``2026-01-31T12:00:00Z``; ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(value: dt.datetime | None) -> int | None:
    """A timestamp for ``--json``: seconds since the epoch (RFC 7519 §2 NumericDate)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp())


def print_json(data: Json) -> None:
    print(json.dumps(data))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns, or ``(none)``."""
    if not rows:
        print("(none)")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
