"""A Django project that keeps its state in backing services, as the twelve-factor
guides say: Redis as its cache (notes kept with no expiry), Memcached for its sessions.
The addresses come from the environment (``sarge HOME service add APP redis`` and
``... memcached`` give every instance REDIS_URL and MEMCACHED_SERVERS)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-a-test-app-only")
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
ROOT_URLCONF = "cachesite.urls"
WSGI_APPLICATION = "cachesite.wsgi.application"
DATABASES = {}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    },
    "sessions": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": os.environ.get("MEMCACHED_SERVERS", "127.0.0.1:11211"),
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "sessions"

SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012",
                          "security.W016"]
