"""Who may use the console, and the one decorator every console page is declared with.

:func:`console_page` is the form-page pattern (``web/pages.py``: session, CSRF,
transaction, sign-in with the way back) plus three checks, in this order:

1. the signed-in user holds at least one ``admin:`` permission (through their
   roles, ``roles.permissions.permissions_for``), else 403;
2. with ``ADMIN_REQUIRE_MFA`` (on by default) the session passed a second
   factor; an administrator without one is sent to :func:`enrol` (the signed-in
   check already sent anyone *with* a factor to the MFA page);
3. the page's own permission (``admin:users:read``, ``admin:clients:write``, …), else 403.

Handlers receive a :class:`Console`: the page plus the administrator's permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from authserver.i18n import N_
from authserver.oauth.vocabulary import AMR_SECOND_FACTORS
from authserver.roles.permissions import admin_permission, permissions_for
from authserver.web.pages import Endpoint, ErrorPage, Page, Redirect, Render, Result, form_page

NOT_ADMIN: Final = ErrorPage(N_("This page is for administrators. Your account has no administrator role."),
                             "access_denied", 403)
NOT_ALLOWED: Final = ErrorPage(N_("Your administrator role does not allow this."), "access_denied", 403)
ENROL: Final = "/admin/enrol"


@dataclass(frozen=True)
class Console:
    """What a console handler sees: the page and what the administrator may do."""

    page: Page
    permissions: frozenset[str]

    @property
    def actor(self) -> str:
        """The administrator's user id, named as ``actor`` in every audit event."""
        return self.page.user.id

    def may(self, resource: str, action: str) -> bool:
        return admin_permission(resource, action) in self.permissions

    def values(self, **values: object) -> dict[str, object]:
        """Template values every console page needs (CSRF token, what may be shown)."""
        return {"csrf_token": self.page.csrf_token(), "admin": self.page.user,
                "may": self.may, **values}


ConsoleHandler = Callable[[Console], Result]


def admin_permissions(page: Page) -> frozenset[str]:
    """The ``admin:`` permissions of the signed-in user."""
    return frozenset(p for p in permissions_for(page.db, user_id=page.user.id) if p.startswith("admin:"))


def needs_mfa(page: Page) -> bool:
    """An administrator's session without a second factor, when ``ADMIN_REQUIRE_MFA`` asks for one."""
    return page.ctx.settings.admin_require_mfa and not AMR_SECOND_FACTORS & set(page.session.amr or [])


def console_page(resource: str, action: str) -> Callable[[ConsoleHandler], Endpoint]:
    """Declare a console page needing ``admin:<resource>:<action>`` (see the module docstring)."""
    needed = admin_permission(resource, action)  # a typo fails at import

    def wrap(handler: ConsoleHandler) -> Endpoint:
        def guarded(page: Page) -> Result:
            permissions = admin_permissions(page)
            if not permissions:
                return NOT_ADMIN
            if needs_mfa(page):
                return Redirect(ENROL)
            if needed not in permissions:
                return NOT_ALLOWED
            return handler(Console(page, permissions))

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return form_page(signed_in=True)(guarded)

    return wrap


@form_page(signed_in=True)
def enrol(page: Page) -> Result:
    """An administrator without a second factor: explain, and offer to set one up
    (the account page's enrolment; its confirmation marks the session as MFA)."""
    if not admin_permissions(page):
        return NOT_ADMIN
    if not needs_mfa(page):
        return Redirect("/admin")
    return Render("admin/enrol.html", {"csrf_token": page.csrf_token()})
