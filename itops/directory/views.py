"""Directory pages."""
from itops.core.views import area_blueprint

bp = area_blueprint("directory")
