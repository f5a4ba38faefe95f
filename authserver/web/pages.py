"""The form-page pattern: one wrapper for every browser page.

A page handler is a plain function ``(Page) -> Result`` declared with
:func:`form_page`. The wrapper, and only the wrapper:

1. refuses the page when it is switched off (``enabled``);
2. on POST, reads the urlencoded form and applies the rate limit (``rate_limit``);
3. opens the request's database transaction (committed when the handler returns);
4. loads the browser session from its cookie;
5. on POST, checks the CSRF token bound to that session (synchroniser token,
   OWASP CSRF Prevention Cheat Sheet) and refuses the form when it does not match —
   or, with ``csrf="optional"`` (RP-Initiated Logout, whose POST may come from a
   relying party), tells the handler through :attr:`Page.csrf_ok`;
6. with ``signed_in=True``, sends anyone without the whole authentication the
   page needs to the login or MFA page: a second factor when the account has
   one, or when the pending authorization request (``rid``) asks for it through
   its client or ``acr_values`` (:func:`authorization.missing_step`, the rule the
   pipeline itself uses); without a pending request it remembers in the session
   which page to come back to (:meth:`Page.return_to`);
7. turns the handler's typed result into the response, setting or clearing
   the session cookie as the handler asked, and re-sealing an anonymous
   session's cookie when the handler changed it (:mod:`authserver.sessions.service`).

The texts every page shares — a forged or stale form, an expired sign-in
request — are written here once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authserver import i18n
from authserver.accounts import letters
from authserver.accounts import service as accounts
from authserver.accounts.models import User
from authserver.i18n import N_
from authserver.oauth import authorization, bridge
from authserver.sessions import devices
from authserver.sessions import service as sessions
from authserver.sessions.models import BrowserSession
from authserver.web import http, language
from authserver.web.guards import rate_limit as apply_rate_limit

if TYPE_CHECKING:
    from authserver.context import Context
    from authserver.settings import Settings

CSRF_FAILED = N_("The form expired or was not sent by this site. Go back and try again.")
SIGN_IN_EXPIRED = authorization.SIGN_IN_EXPIRED
#: session data key: the page a login without a pending authorization request returns to
RETURN_TO = "return_to"


@dataclass(frozen=True)
class Render:
    """Show ``template`` with ``values``."""

    template: str
    values: Mapping[str, object] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    """A 303 to ``location`` (a reload never repeats a POST); ``after`` runs once the
    response is sent, so its timing (a mail) does not show in the response's."""

    location: str
    after: Callable[[], object] | None = None


@dataclass(frozen=True)
class ErrorPage:
    """An HTML error page, never a redirect."""

    description: str
    error: str = "invalid_request"
    status: int = 400


@dataclass(frozen=True)
class Json:
    """A JSON body (``no-store``), for the few endpoints a page's script calls with
    ``fetch`` (passkeys); the session cookie is set as for the other results."""

    body: Mapping[str, object]
    status: int = 200


Result = Render | Redirect | ErrorPage | Json

FORGED = ErrorPage(CSRF_FAILED)
EXPIRED = ErrorPage(SIGN_IN_EXPIRED)
NOT_FOUND = ErrorPage(N_("There is nothing here."), "not_found", 404)


def with_rid(path: str, rid: str) -> str:
    """``path`` carrying the pending authorization request ``rid``, if any."""
    return f"{path}?{urlencode({'rid': rid})}" if rid else path


class Page:
    """What a page handler sees: the request, its form, the database session of
    the transaction and the browser session. Runs in a worker thread."""

    def __init__(self, request: Request, ctx: Context, db: Session, form: dict[str, str],
                 session: BrowserSession | None) -> None:
        self.request = request
        self.ctx = ctx
        self.db = db
        self.form = form
        #: the browser session from the cookie, if any (see :attr:`session`)
        self.loaded = session
        #: a POST whose CSRF token matched this session
        self.csrf_ok = False
        self._user: User | None = None
        self._cookie: str | None = None
        self._clear_cookie = False
        #: the language cookie to set (the switcher)
        self._language_cookie: str | None = None
        #: what runs once the response is sent (mail: its timing must not show in the response's)
        self._after: list[Callable[[], object]] = []
        # an anonymous session's data as loaded: re-sealed into the cookie when it changes
        self._anonymous_data: object = session.data if session is not None else None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def params(self) -> Mapping[str, str]:
        """The form on POST, the query string otherwise."""
        return self.form if self.method == "POST" else self.request.query_params

    @property
    def rid(self) -> str:
        """The pending authorization request this page continues (empty: none)."""
        return self.params.get("rid", "")[:100]

    @property
    def ip(self) -> str:
        return str(self.request.state.client_ip)

    @property
    def user_agent(self) -> str | None:
        return self.request.headers.get("user-agent")

    @property
    def locale(self) -> str:
        """The language this page is shown in (:mod:`authserver.i18n`)."""
        return language.locale_of(self.request)

    def after(self, task: Callable[[], object]) -> None:
        """Run ``task`` once the response is sent (in order, after a :class:`Redirect`'s own)."""
        self._after.append(task)

    def set_language(self, locale: str) -> None:
        """Remember ``locale`` in the language cookie (the switcher)."""
        self._language_cookie = locale

    @property
    def session(self) -> BrowserSession:
        """The browser session; present after a CSRF-checked POST, on ``signed_in``
        pages and after :meth:`ensure_session`."""
        if self.loaded is None:
            raise LookupError("no browser session on this request")
        return self.loaded

    @property
    def user(self) -> User:
        """The signed-in user of a ``signed_in`` page."""
        if self._user is None:
            raise LookupError("not a signed_in page")
        return self._user

    def csrf_token(self) -> str:
        return sessions.csrf_token(self.session)

    def ensure_session(self) -> BrowserSession:
        """The session, or a new anonymous one (not stored) whose cookie the response sets."""
        if self.loaded is None:
            self.loaded = sessions.anonymous()
        return self.loaded

    def log_in(self, user_id: str, *, amr: list[str], acr: str, complete: bool = True) -> BrowserSession:
        """Replace the session with an authenticated one (a new id against session
        fixation: OWASP Session Management Cheat Sheet, "Renew the Session ID After Any
        Privilege Level Change").

        ``complete``: no second factor is left to pass, so this browser is now a device
        of the user's, counted by the device limit (which may sign out another one:
        ``sessions.devices.sign_in``). A password awaiting its second factor is not.
        """
        known = sessions.kept_device(self.loaded, user_id)
        device = devices.sign_in(self.db, self.ctx, user_id, known, user_agent=self.user_agent,
                                 ip=self.ip) if complete else None
        self.loaded, self._cookie = sessions.log_in(
            self.db, self.ctx.box, self.ctx.settings, self.loaded, user_id=user_id, amr=amr, acr=acr,
            auth_time=int(self.ctx.clock()), ip=self.ip, user_agent=self.user_agent,
            device_id=device.id if device is not None else known)
        if device is not None:
            user = accounts.get_user(self.db, user_id, with_roles=False)
            if user is not None:
                if device.id != known and devices.had_other_devices(self.db, user_id, device.id):
                    # a new device of an account used elsewhere before: tell the owner, in the
                    # language they last used (before this sign-in's is remembered)
                    self.after(letters.new_device(self.ctx.settings, user,
                                                  devices.device_name(self.user_agent), ip=self.ip))
                accounts.remember_locale(user, self.locale)
        return self.loaded

    def continue_authorization(self) -> Result:
        """Where pending request :attr:`rid` goes now that this page has done its part
        (login, MFA, consent, sign-up): the pipeline runs right here
        (:func:`authorization.resume`), so the answer is the next page it needs or the
        redirect to the client (a 303 after the POST), never a hop through
        ``/authorize/resume``."""
        outcome = authorization.resume(self.ctx, self.loaded, self.rid, self.request.headers, self.ip)
        if outcome.location:
            return Redirect(outcome.location)
        return ErrorPage(outcome.error_description or "The request is invalid.",
                         outcome.error or "invalid_request", outcome.status)

    def come_back_here(self) -> None:
        """After login (and MFA), return to this page: its path is kept in the session,
        never taken from a parameter, so it cannot become an open redirect."""
        if self.method == "GET":
            target = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
            sessions.set_data(self.ensure_session(), RETURN_TO, target[:500])

    def return_to(self) -> str:
        """Where a login or MFA step without a pending authorization request goes next:
        the page that sent the user there (:meth:`come_back_here`), else ``/account``."""
        target = (self.loaded.data or {}).get(RETURN_TO) if self.loaded is not None else None
        if self.loaded is not None and target:
            sessions.set_data(self.loaded, RETURN_TO, None)
        if isinstance(target, str) and target.startswith("/") and not target.startswith(("//", "/\\")):
            return target
        return "/account"

    def clear_cookie(self) -> None:
        self._clear_cookie = True

    def _sign_in_first(self) -> Redirect | None:
        """Where to go first when the session lacks part of the authentication this page
        needs (login or MFA, for the pending request ``rid`` if any), keeping ``rid``;
        without a pending request the login comes back to this page."""
        step = authorization.missing_step(self.ctx, self.db, self.loaded, self.rid)
        if step is not None:
            if not self.rid:
                self.come_back_here()
            return Redirect(with_rid("/login/mfa" if step == "mfa" else "/login", self.rid))
        # the row missing_step just read (no query); its roles load if a handler reads them
        self._user = accounts.get_user(self.db, self.session.user_id, with_roles=False)
        return None

    def _anonymous_cookie(self) -> str | None:
        """The re-sealed cookie of a new or changed anonymous session; raises
        :class:`sessions.TooLargeError` when it cannot fit."""
        session = self.loaded
        if session is None or not sessions.is_anonymous(session) or session.data is self._anonymous_data:
            return None
        value = authorization.seal_anonymous(self.ctx, session, keep=self.rid or None)
        if value is None:
            raise sessions.TooLargeError("anonymous session")
        return value

    def _respond(self, result: Result) -> Response:
        request = self.request
        try:
            anonymous = self._anonymous_cookie()
        except sessions.TooLargeError:
            result, anonymous = ErrorPage(authorization.REQUEST_TOO_LARGE), None
        self._cookie = self._cookie or anonymous
        if isinstance(result, Render):
            response = http.page(request, result.template, result.values, result.status)
        elif isinstance(result, Json):
            body = dict(result.body)
            if isinstance(body.get("error"), str):  # a message the page's script shows: in its language
                body["error"] = i18n.translate(body["error"], self.locale)
            response = JSONResponse(body, status_code=result.status, headers=http.NO_STORE)
        elif isinstance(result, Redirect):
            response = http.redirect(result.location, request)
            if result.after is not None:
                self._after.insert(0, result.after)
        else:
            response = http.error_page(request, result.error, result.description, result.status)
        if self._cookie:
            http.set_session_cookie(response, request, self._cookie)
        elif self._clear_cookie:
            http.clear_session_cookie(response, request)
        if self._language_cookie:
            http.set_language_cookie(response, request, self._language_cookie)
        if self._after:
            tasks = BackgroundTasks()
            for task in self._after:
                tasks.add_task(task)
            response.background = tasks
        return response


Handler = Callable[[Page], Result]
Endpoint = Callable[[Request], Awaitable[Response]]


def _always(settings: Settings) -> bool:
    return True


def form_page(*, csrf: Literal["required", "optional"] = "required", rate_limit: str | None = None,
              signed_in: bool = False, enabled: Callable[[Settings], bool] = _always,
              disabled: ErrorPage = NOT_FOUND) -> Callable[[Handler], Endpoint]:
    """Declare a browser page; see the module docstring for what the wrapper does.

    ``rate_limit`` names the bucket a POST counts in (per client IP).
    """

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            ctx = http.context(request)
            if not enabled(ctx.settings):
                return http.error_page(request, disabled.error, disabled.description, disabled.status)
            post = request.method == "POST"
            form = dict(await bridge.read_form(request)) if post else {}
            cookie = http.session_cookie(request)

            def run() -> tuple[Page, Result]:
                db = bridge.current_db.get()
                if post and rate_limit:
                    apply_rate_limit(ctx, rate_limit, request.state.client_ip)
                page = Page(request, ctx, db, form, sessions.load(db, ctx.box, cookie))
                # the pending sign-in request's ui_locales, before anything is rendered
                ui_locales, request.state.chosen_locale = authorization.pending_language(page.loaded, page.rid)
                # else the request's own (RP-Initiated Logout 1.0 §2 takes ui_locales too)
                request.state.ui_locales = ui_locales if ui_locales is not None else page.params.get("ui_locales")
                page.csrf_ok = post and sessions.check_csrf(page.loaded, form.get("csrf_token"))
                if post and csrf == "required" and not page.csrf_ok:
                    return page, FORGED
                if signed_in and (to_login := page._sign_in_first()) is not None:
                    return page, to_login
                return page, handler(page)

            page, result = await bridge.call(ctx, run)
            return page._respond(result)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
