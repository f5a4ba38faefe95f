"""What every HTTP surface shares: request guards, browser cookies and responses, the form-page pattern.

``endpoints/`` and ``interaction/`` both import from here and never from each other
(see ``docs/architecture.md``).
"""
