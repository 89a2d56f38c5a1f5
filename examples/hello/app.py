"""The example app: a WSGI application that says which instance answered."""

import os


def app(environ, start_response):
    body = "Hello from {} (instance {}, port {})\n".format(
        os.environ.get("SARGE_APP", "?"), os.environ.get("SARGE_INSTANCE", "?"),
        os.environ.get("PORT", "?"),
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", int(os.environ["PORT"]), app).serve_forever()
