#!/usr/bin/env python
"""Django's command-line utility for Gantry."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
    # On a laptop with no SECRET_KEY, management commands run in development mode; with a
    # SECRET_KEY (any real deployment) the production defaults apply, as for the web server.
    if not os.environ.get("SECRET_KEY"):
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
