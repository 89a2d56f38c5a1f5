"""A small site for the front-end tests, standard library only: it answers only the host
names in $ALLOWED_HOSTS (as Django's ALLOWED_HOSTS does: 400 for any other), says which
instance answered and what nginx told it, takes uploads, long-polls and streams.

GET /            "INSTANCE HOST PROTO"
GET /health      ok (the same host check)
POST /upload     the number of bytes received
GET /poll?s=N    answers after N seconds
GET /stream      five lines, 0.3 s apart, each flushed as it is written
"""
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = [h for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _allowed(self):
        host = (self.headers.get("Host") or "").rpartition(":")[0] or self.headers.get("Host")
        if "*" in ALLOWED or host in ALLOWED:
            return True
        self._send(400, f"Invalid HTTP_HOST header: {host!r}\n")
        return False

    def _send(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if not self._allowed():
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health":
            self._send(200, "ok\n")
        elif url.path == "/poll":
            seconds = float(urllib.parse.parse_qs(url.query).get("s", ["1"])[0])
            time.sleep(seconds)
            self._send(200, f"polled {seconds:g}s\n")
        elif url.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                line = f"{time.time():.3f} line {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, f"{os.environ['SARGE_INSTANCE']} {self.headers.get('Host')} "
                            f"{self.headers.get('X-Forwarded-Proto')}\n")

    def do_POST(self):
        if not self._allowed():
            return
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        self._send(200, f"{received}\n")

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    print(f"listening on {os.environ['PORT']}", flush=True)
    sys.stdout.flush()
    server.serve_forever()
