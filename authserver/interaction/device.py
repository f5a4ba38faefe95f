"""The device verification page (RFC 8628 §3.3): the user types the code their device
shows, then signs in and consents on the usual pages.

``/device`` takes the code (``verification_uri``; ``?user_code=`` fills it in for the
``verification_uri_complete`` link, but the user still submits the form: a link alone
never approves anything, §5.4). Every POST counts in the ``login`` rate limit, and every
wrong code in ``RATE_LIMIT_USER_CODE_FAILURES`` per address (§5.1: bounded guessing).
A right code becomes a pending request of the browser session (``oauth.device.begin``)
and ``/device/continue`` runs its checks (``oauth.device.resume``): the login, MFA and
consent pages come back there through ``/authorize/resume``.
"""

from __future__ import annotations

from authserver.device_flow import service as device_flow
from authserver.i18n import N_, Text
from authserver.oauth import device
from authserver.web.guards import user_code_budget, user_code_failed
from authserver.web.pages import Page, Redirect, Render, Result, form_page, with_rid

WRONG_CODE = N_("That code is not valid or has expired. Check the code on your device and try again.")
DONE = {
    "approved": (N_("Device connected"), N_("%(name)s is now signed in on your device. You can close this window.")),
    "denied": (N_("Access denied"),
               N_("%(name)s was not allowed. Your device will stop waiting. You can close this window.")),
    "expired": (N_("Code expired"), N_("This code has expired or was already used. Start again on your device.")),
}


def _form(page: Page, user_code: str = "", error: str | None = None) -> Render:
    return Render("device.html", {"csrf_token": page.csrf_token(), "user_code": user_code, "error": error},
                  400 if error else 200)


@form_page()
def device_form(page: Page) -> Result:
    page.ensure_session()
    typed = device_flow.normalize_user_code(page.request.query_params.get("user_code", ""))
    return _form(page, device_flow.display(typed) if typed else "")


@form_page(rate_limit="login")
def device_submit(page: Page) -> Result:
    user_code_budget(page.ctx, page.ip)
    typed = page.form.get("user_code", "")
    row = device_flow.find_pending(page.db, page.ctx.box, typed)
    if row is None:
        user_code_failed(page.ctx, page.ip)
        return _form(page, typed[:20], WRONG_CODE)
    normalized = device_flow.normalize_user_code(typed) or ""
    rid = device.begin(page.ctx, page.session, row, device_flow.display(normalized))
    return Redirect(with_rid(device.CONTINUE_PATH, rid))


@form_page()
def device_continue(page: Page) -> Result:
    step = device.resume(page.ctx, page.loaded, page.rid, page.ip)
    if step.location is not None:
        return Redirect(step.location)
    title, text = DONE[step.done or "expired"]
    message = text if step.done in (None, "expired") else Text(text, name=step.client_name or "")
    return Render("message.html", {"title": title, "message": message}, 200 if step.done != "expired" else 400)
