"""The administration surface: the JSON admin API (``api/``) and the console pages.

Both call the same domain services as the command line; no rule lives here.
"""
