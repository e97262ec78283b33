"""The tests' Redis cache: clear() empties this process's keys only.

Django's RedisCache.clear() is FLUSHDB, which in a suite run by several pytest-xdist workers
on one Redis database would empty the other workers' caches in the middle of their tests.
Each worker has a KEY_PREFIX of its own (tests/settings.py), and clear() here deletes only
the keys under it.
"""

import re

from django.core.cache.backends.redis import RedisCache

# Redis glob patterns treat these as special; a prefix containing them is matched literally.
_GLOB = re.compile(r"([\\*?\[\]])")


class PrefixRedisCache(RedisCache):
    def clear(self) -> bool:
        if not self.key_prefix:
            return super().clear()
        client = self._cache.get_client(write=True)
        pattern = _GLOB.sub(r"\\\1", self.key_prefix) + ":*"
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        return True
