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

# A shared Redis cache (CI) keeps test keys apart from anything else in it, and each
# pytest-xdist worker's ("gw0", "gw1", ...) apart from the others'. Its clear() deletes only
# keys under its own prefix: FLUSHDB would empty the other workers' caches mid-test.
_cache = CACHES["default"]  # noqa: F405
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_cache["KEY_PREFIX"] = f"gantry-tests-{_worker}" if _worker else "gantry-tests"
if _cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    _cache["BACKEND"] = "tests.cache.PrefixRedisCache"
