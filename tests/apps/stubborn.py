"""A server on $PORT that answers every GET with its first argument and, when the port is
taken, keeps trying to bind it instead of exiting (as servers that retry do)."""

import http.server
import os
import sys
import time

TEXT = (sys.argv[1] if len(sys.argv) > 1 else "stubborn").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(TEXT)))
        self.end_headers()
        self.wfile.write(TEXT)

    def log_message(self, *args):
        pass


def main():
    port = int(os.environ["PORT"])
    while True:
        try:
            server = http.server.HTTPServer(("127.0.0.1", port), Handler)
            break
        except OSError:
            time.sleep(0.2)
    server.serve_forever()


if __name__ == "__main__":
    main()
