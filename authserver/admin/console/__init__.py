"""The admin console at ``/admin``: server-rendered pages over the domain services.

Reached with the browser session of our own login (docs/decisions.md, "The
admin console uses the browser session"); every page is a :func:`console_page`.
"""
