"""Routes of the browser pages (login, consent; MFA, account and sign-up add theirs here)."""

from __future__ import annotations

from starlette.routing import Route

from authserver.interaction import consent, login

routes = [
    Route("/login", login.login_form, methods=["GET"]),
    Route("/login", login.login_submit, methods=["POST"]),
    Route("/consent", consent.consent_form, methods=["GET"]),
    Route("/consent", consent.consent_submit, methods=["POST"]),
]
