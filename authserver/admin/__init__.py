"""The administrator's surfaces: the JSON admin API (``api/``) and the console in the
browser (``console/``). Both call the same domain services as the command line; no
rule lives here.
"""
