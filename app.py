"""Entry point for `flask` and gunicorn: `gunicorn app:app`."""
import gc

from itops import create_app

app = create_app()
# What is loaded now lives as long as the process; the garbage collector need not scan it again and again.
gc.freeze()
