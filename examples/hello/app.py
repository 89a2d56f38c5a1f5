"""The example app: a small Flask application, served by gunicorn (see the Procfile).

GET / says which version and instance answered and counts visits in
$SARGE_DATA_DIR, which outlives deploys; POST / answers the body's length;
GET /health is the health check.
"""

import os

from flask import Flask, request

VERSION = "1"
app = Flask(__name__)


def count_visit():
    """One byte appended per visit: atomic with O_APPEND, so concurrent workers and
    instances never lose a count."""
    path = os.path.join(os.environ.get("SARGE_DATA_DIR", "."), "visits")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


@app.get("/")
def hello():
    return (f"Hello from {os.environ.get('SARGE_APP', '?')} version {VERSION} "
            f"(instance {os.environ.get('SARGE_INSTANCE', '?')}), visit {count_visit()}\n")


@app.post("/")
def echo():
    return f"received {len(request.get_data())} bytes\n"


@app.get("/health")
def health():
    return "ok\n"
