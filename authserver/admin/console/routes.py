"""Routes of the admin console under ``/admin``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authserver.admin.console import audit, clients, guard, keys, users
from authserver.web import http


async def home(request: Request) -> Response:
    return http.redirect("/admin/users", request)


routes = [
    Route("/admin", home, methods=["GET"]),
    Route("/admin/enrol", guard.enrol, methods=["GET"]),
    Route("/admin/users", users.user_list, methods=["GET"]),
    Route("/admin/users/{user_id}", users.user_detail, methods=["GET"]),
    Route("/admin/users/{user_id}/disable", users.disable, methods=["POST"]),
    Route("/admin/users/{user_id}/enable", users.enable, methods=["POST"]),
    Route("/admin/clients", clients.client_list, methods=["GET"]),
    Route("/admin/clients", clients.create, methods=["POST"]),
    Route("/admin/clients/new", clients.new_form, methods=["GET"]),
    Route("/admin/clients/secret", clients.secret_once, methods=["GET"]),
    Route("/admin/clients/{client_id}", clients.client_detail, methods=["GET"]),
    Route("/admin/clients/{client_id}", clients.update, methods=["POST"]),
    Route("/admin/clients/{client_id}/rotate-secret", clients.rotate_secret, methods=["POST"]),
    Route("/admin/keys", keys.key_list, methods=["GET"]),
    Route("/admin/keys/rotate", keys.rotate, methods=["POST"]),
    Route("/admin/audit", audit.event_list, methods=["GET"]),
]
