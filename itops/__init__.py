"""itops: IT operations and helpdesk.

Importing this package must stay cheap and Flask-free: the inventory agent (itops.agent) runs on
employees' machines with only psutil and the standard library.
"""


def create_app(config: dict | None = None):
    """Build the Flask app. `config` overrides settings read from ITOPS_* variables (tests use it)."""
    from itops.factory import build_app

    return build_app(config)
