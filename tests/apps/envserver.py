"""A tiny HTTP server for the tests: GET /env answers the process's environment as JSON.

It listens on 127.0.0.1:$PORT. With --children N it starts N sleeping child
processes first (a process tree, like a gunicorn master and its workers).
"""
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/env":
            body = json.dumps(dict(os.environ)).encode()
        else:
            body = f"hello from {os.environ.get('SARGE_INSTANCE')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stdout.write("request " + (fmt % args) + "\n")


def main():
    children = 0
    if "--children" in sys.argv:
        children = int(sys.argv[sys.argv.index("--children") + 1])
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            for _ in range(children)]
    print(f"listening on {os.environ['PORT']} with {len(kids)} children", flush=True)
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
