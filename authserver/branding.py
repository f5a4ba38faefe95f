"""The brand every page and mail shows: name, logo, colours, support link, theme folder.

Built once from the settings (``BRAND_*``, ``SUPPORT_*``, ``THEME_DIR``; see
docs/branding.md). Templates see it as the global ``brand``; the colours reach
the pages through ``/brand.css`` (a stylesheet from ``'self'``, so the
Content-Security-Policy needs no ``'unsafe-inline'``).

Also the small presentation helpers the templates share: :func:`relative_time`
(the one place a "3 hours ago" is worded, so that a translation replaces one
function) and the ``device_name`` filter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from authserver.settings import Settings

Colour = tuple[int, int, int]
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
WHITE: Colour = (255, 255, 255)
#: the path of the generated stylesheet with the brand's colours
BRAND_CSS_PATH = "/brand.css"


def parse_colour(raw: str) -> Colour:
    """``#rrggbb`` or ``#rgb`` as an RGB triple; ``ValueError`` otherwise."""
    match = _HEX.fullmatch(raw.strip())
    if match is None:
        raise ValueError(raw)
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _luminance(colour: Colour) -> float:
    """Relative luminance (WCAG 2.2, "relative luminance")."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Colour, b: Colour) -> float:
    """WCAG 2.2 contrast ratio, 1 to 21."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _hex(colour: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _mix(colour: Colour, other: Colour, weight: float) -> Colour:
    """``colour`` moved ``weight`` (0..1) of the way towards ``other``."""
    r, g, b = (round(c + (o - c) * weight) for c, o in zip(colour, other, strict=True))
    return r, g, b


@dataclass(frozen=True)
class Brand:
    """What templates (pages and mails) see as ``brand``."""

    name: str
    #: an https URL, or ``/static/<file>`` from the theme folder; empty: no logo
    logo_url: str
    primary: str
    accent: str
    support_url: str
    support_email: str
    #: the ``href`` of the support link (``support_url``, else ``mailto:`` the e-mail); empty: none
    support_href: str
    #: the stylesheet with the colours, with a version so a changed colour is not cached
    css_url: str
    css: str

    def for_mail(self, issuer: str) -> dict[str, str]:
        """The brand as mail template variables: like ``brand`` on pages, with the logo as an
        absolute URL (a mail has no page origin to resolve ``/static/...`` against)."""
        logo = self.logo_url if not self.logo_url.startswith("/") else issuer + self.logo_url
        return {"brand_name": self.name, "brand_logo_url": logo, "brand_primary": self.primary,
                "brand_accent": self.accent, "support_href": self.support_href,
                "support_email": self.support_email, "support_url": self.support_url}

    @property
    def logo_origin(self) -> str | None:
        """The origin of an https logo, which the Content-Security-Policy must allow."""
        if self.logo_url.startswith("https://"):
            parts = urlsplit(self.logo_url)
            return f"{parts.scheme}://{parts.netloc}"
        return None


def stylesheet(primary: Colour, accent: Colour) -> str:
    """The custom properties ``style.css`` uses: the brand colours and shades derived from them."""
    hover = _mix(primary, (0, 0, 0), 0.18)
    tint = _mix(primary, WHITE, 0.92)
    return (
        ":root {\n"
        f"  --primary: {_hex(primary)};\n"
        f"  --primary-hover: {_hex(hover)};\n"
        f"  --primary-tint: {_hex(tint)};\n"
        f"  --accent: {_hex(accent)};\n"
        "}\n"
    )


def from_settings(settings: Settings) -> Brand:
    primary = parse_colour(settings.brand_primary_color)
    accent = parse_colour(settings.brand_accent_color)
    css = stylesheet(primary, accent)
    logo = settings.brand_logo
    if logo and "://" not in logo:
        logo = "/static/" + Path(logo).as_posix()
    support_href = settings.support_url or (f"mailto:{settings.support_email}" if settings.support_email else "")
    version = hashlib.sha256(css.encode()).hexdigest()[:10]
    return Brand(
        name=settings.brand_name.strip(), logo_url=logo, primary=_hex(primary), accent=_hex(accent),
        support_url=settings.support_url, support_email=settings.support_email, support_href=support_href,
        css_url=f"{BRAND_CSS_PATH}?v={version}", css=css,
    )


# -- presentation helpers shared by the templates ------------------------------------------

_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
          ("hour", 3600), ("minute", 60))


def relative_time(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """"3 hours ago", "just now", "in 5 minutes": the one place relative times are worded
    (a translation replaces this function). Naive datetimes are UTC."""
    if when is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = int((now - when).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        return "just now"
    for unit, size in _UNITS:
        if seconds >= size:
            count = seconds // size
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return "just now"  # pragma: no cover  (the loop ends at minutes, reached from 60 s up)


def device_label(user_agent: str | None) -> str:
    """The device a session came from as a heading: "Firefox on Linux", "An unknown browser"
    (names from :func:`authserver.sessions.devices.device_name`, never the header's text)."""
    from authserver.sessions.devices import device_name

    name = device_name(user_agent)
    return name[:1].upper() + name[1:]


def utc_iso(when: dt.datetime | None) -> str:
    """The machine-readable ``datetime`` attribute of a ``<time>`` element (UTC)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text(when: dt.datetime | None) -> str:
    """The exact time, shown as the ``title`` of a relative one: ``2026-11-30 09:55 UTC``."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
