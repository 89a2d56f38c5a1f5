"""The example app: a small WSGI application, served by gunicorn (see the Procfile).

GET / says which version and instance answered; POST / echoes the body's length;
GET /health is the health check. It keeps a visit counter in $SARGE_DATA_DIR,
which outlives deploys.
"""

import os

VERSION = "1"


def _count_visit():
    """Count visits in $SARGE_DATA_DIR: one byte appended per visit (atomic with O_APPEND,
    so concurrent workers and instances never lose or garble a count)."""
    path = os.path.join(os.environ.get("SARGE_DATA_DIR", "."), "visits")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = b"ok\n"
    elif environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        body = f"received {len(data)} bytes\n".encode()
    else:
        body = "Hello from {} version {} (instance {}), visit {}\n".format(
            os.environ.get("SARGE_APP", "?"), VERSION,
            os.environ.get("SARGE_INSTANCE", "?"), _count_visit()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
