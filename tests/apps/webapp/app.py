"""The deploy tests' app: WSGI, served by gunicorn; its behaviour is set by files beside it.

- VERSION (a file): the text GET / answers.
- GET /health answers the status in the file HEALTH (default 200), or 503 when the
  variable FAIL_HEALTH is set.
- GET /env answers the environment as JSON; POST / answers the body's length.
- GET /slow sleeps 0.3 s first (a request in flight during a switch).
"""

import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name, default):
    try:
        with open(os.path.join(HERE, name)) as f:
            return f.read().strip()
    except OSError:
        return default


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = f"posted {len(environ['wsgi.input'].read(length))}\n"
    elif path == "/health":
        code = "503" if os.environ.get("FAIL_HEALTH") else _read("HEALTH", "200")
        status = f"{code} X"
        body = code + "\n"
    elif path == "/env":
        body = json.dumps(dict(os.environ))
    else:
        if path == "/slow":
            time.sleep(0.3)
        body = f"version {_read('VERSION', '0')} from {os.environ.get('SARGE_INSTANCE')}\n"
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
