"""The administrator's surfaces: the console in the browser (``console/``)."""
