"""Entry point for `flask` and gunicorn: `gunicorn app:app`."""
from itops import create_app

app = create_app()
