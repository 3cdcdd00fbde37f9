"""A real local HTTP receiver (http.server in a thread) that verifies the CreatorFlix signature."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (docs/integrations.md): recompute HMAC-SHA256 of "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class Receiver:
    def __init__(self, secret="", answers=()):
        self.secret = secret
        self.answers = list(answers)  # status codes to answer in turn, then 200
        self.received = []  # (headers, body dict, signature valid)
        self.arrivals = {}  # event id -> time.time() when it arrived (benchmarks)
        self.hang = threading.Event()  # set → requests block until `release` is set
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang.is_set():
                    receiver.release.wait(30)
                valid = verify(receiver.secret, self.headers.get("X-CreatorFlix-Signature", "t=0,v1="), body)
                document = json.loads(body)
                receiver.arrivals.setdefault(document.get("id"), time.time())
                receiver.received.append((dict(self.headers), document, valid))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def types(self):
        return [body["type"] for _, body, _ in self.received]
