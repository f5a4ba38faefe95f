"""``authserver``: the command line (the console script ``authserver.cli:main``).

One module per noun, each adding its commands with ``add_commands``; what they
share (parser plumbing, the Context, output, the error path) is in
:mod:`authserver.cli.common`. A command parses, calls a domain service and
prints: the rules live in the services, which the pages and the admin API call
too. Every command reads the same ``AUTHSERVER_*`` settings as the server.
Results go to stdout as text, or as JSON with ``--json``; failures are one
``error:`` line on stderr (see ``common`` for the exit statuses). The command
spellings are a contract with operators' scripts (README "Command line").
"""

from __future__ import annotations

from collections.abc import Sequence

from authserver.cli import clients, common, keys, maintenance, registration_tokens, roles, serve, users

__all__ = ["build_parser", "main"]


def build_parser() -> common.Parser:
    parser = common.Parser(prog="authserver", description="OAuth 2.0 / OpenID Connect authorization server.")
    parser.add_argument("--debug", action="store_true", help="print the full trace of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for noun in (serve, users, roles, clients, keys, maintenance, registration_tokens):
        noun.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (see :mod:`authserver.cli.common`)."""
    return common.run(build_parser(), argv)
