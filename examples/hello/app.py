"""The example app: a small WSGI application, served by gunicorn (see the Procfile).

GET / says which version and instance answered; POST / echoes the body's length;
GET /health is the health check. It keeps a visit counter in $SARGE_DATA_DIR,
which outlives deploys.
"""

import os

VERSION = "1"


def _count_visit():
    path = os.path.join(os.environ.get("SARGE_DATA_DIR", "."), "visits")
    try:
        with open(path) as f:
            visits = int(f.read() or 0) + 1
    except (OSError, ValueError):
        visits = 1
    with open(path + ".tmp", "w") as f:
        f.write(str(visits))
    os.replace(path + ".tmp", path)
    return visits


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
