"""WSGI entry point (gunicorn gantry.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
application = get_wsgi_application()
