"""Test settings: production settings, with a test secret, no TLS redirect and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("STATIC_MANIFEST", "0")

from gantry.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Live-server threads must not keep connections open past a test, or the test database
# cannot be dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# A shared Redis cache (CI) keeps test keys apart from anything else in it.
CACHES["default"]["KEY_PREFIX"] = "gantry-tests"  # noqa: F405
