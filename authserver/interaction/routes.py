"""Routes of the browser pages: login, MFA, passkeys, consent, account, sign-up, password reset, the language
switcher."""

from __future__ import annotations

from starlette.routing import Route

from authserver.interaction import account, consent, language, login, mfa, passkeys, reset, signup

routes = [
    Route("/login", login.login_form, methods=["GET"]),
    Route("/login", login.login_submit, methods=["POST"]),
    Route("/login/mfa", mfa.mfa_form, methods=["GET"]),
    Route("/login/mfa", mfa.mfa_submit, methods=["POST"]),
    Route("/consent", consent.consent_form, methods=["GET"]),
    Route("/consent", consent.consent_submit, methods=["POST"]),
    Route("/account", account.overview, methods=["GET"]),
    Route("/account/sessions/revoke", account.revoke_session, methods=["POST"]),
    Route("/account/sessions/revoke-others", account.revoke_other_sessions, methods=["POST"]),
    Route("/account/consents/revoke", account.revoke_consent, methods=["POST"]),
    Route("/account/mfa/enrol", account.enrol_page, methods=["GET"]),
    Route("/account/mfa/enrol", account.start_enrolment, methods=["POST"]),
    Route("/account/mfa/confirm", account.confirm_enrolment, methods=["POST"]),
    Route("/account/mfa/disable", account.disable_mfa, methods=["POST"]),
    Route("/account/mfa/backup-codes", account.backup_codes_page, methods=["GET"]),
    Route("/account/mfa/backup-codes", account.regenerate_backup_codes, methods=["POST"]),
    Route("/account/password", account.change_password, methods=["POST"]),
    Route("/account/passkeys/options", passkeys.register_options, methods=["POST"]),
    Route("/account/passkeys/register", passkeys.register_finish, methods=["POST"]),
    Route("/account/passkeys/rename", passkeys.rename, methods=["POST"]),
    Route("/account/passkeys/remove", passkeys.remove, methods=["POST"]),
    Route("/passkeys/login/options", passkeys.login_options, methods=["POST"]),
    Route("/passkeys/login", passkeys.login_finish, methods=["POST"]),
    Route("/passkeys/mfa/options", passkeys.mfa_options, methods=["POST"]),
    Route("/passkeys/mfa", passkeys.mfa_finish, methods=["POST"]),
    Route("/signup", signup.signup_form, methods=["GET"]),
    Route("/signup", signup.signup_submit, methods=["POST"]),
    Route("/signup/verify", signup.verify_form, methods=["GET"]),
    Route("/signup/verify", signup.verify_submit, methods=["POST"]),
    Route("/password/reset", reset.reset_form, methods=["GET"]),
    Route("/password/reset", reset.reset_submit, methods=["POST"]),
    Route("/password/reset/confirm", reset.confirm_form, methods=["GET"]),
    Route("/password/reset/confirm", reset.confirm_submit, methods=["POST"]),
    Route("/password/reset/done", reset.done_page, methods=["GET"]),
    Route("/language", language.switch, methods=["POST"]),
]
