"""GET / says which instance answers; PUT /notes/KEY keeps the body in the cache (Redis,
no expiry), GET /notes/KEY gives it back; GET /visits counts this session's visits
(the session lives in Memcached)."""

import os

from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotFound


def index(request):
    return HttpResponse(f"cachesite from {os.environ.get('SARGE_INSTANCE')}\n")


def note(request, key):
    if request.method == "PUT":
        cache.set(f"note:{key}", request.body.decode(), timeout=None)
        return HttpResponse("kept\n")
    value = cache.get(f"note:{key}")
    return HttpResponseNotFound("no such note\n") if value is None else HttpResponse(value)


def visits(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(f"{request.session['visits']}\n")
