"""
A fake JunglePay on 127.0.0.1 (a real HTTP server in a thread), for fault tests:
it can answer slowly, fail, or answer garbage, and it remembers what was created.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeJunglePay:
    def __init__(self):
        self.transactions: dict[int, dict] = {}
        self.posts = 0
        self.create_delay = 0.0  # seconds before answering a create (the charge exists meanwhile)
        self.create_mode = "ok"  # "ok" | "fail_before_create" | "garbage_before_create"
        self.pix_expiration_date = "2030-01-01"  # the day a created PIX is payable through (YYYY-MM-DD)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _create(self, body: dict) -> dict:
        with self._lock:
            transaction_id = 1000 + len(self.transactions) + 1
            transaction = {
                "id": transaction_id,
                "status": "waiting_payment",
                "amount": body["amount"],
                "externalRef": body.get("externalRef"),
                "paymentMethod": "pix",
                "items": body.get("items", []),
                "customer": body.get("customer", {}),
                "secureUrl": f"https://pay.test/{transaction_id}",
                "pix": {
                    "qrcode": f"00020126580014br.gov.bcb.pix0136fake-{transaction_id}5204000053039865802BR6304ABCD",
                    "url": f"https://pay.test/{transaction_id}/pix",
                    "expirationDate": self.pix_expiration_date,
                },
            }
            self.transactions[transaction_id] = transaction
            return transaction

    def set_status(self, transaction_id: int, status: str, **fields) -> dict:
        """The provider's side changes (paid, refunded, ...): what a later GET /transactions/{id} answers."""
        with self._lock:
            transaction = self.transactions[int(transaction_id)]
            transaction.update(status=status, **fields)
            return dict(transaction)

    def reset(self) -> None:
        """Forget every transaction (a fresh provider for the next test example)."""
        with self._lock:
            self.transactions.clear()
            self.posts = 0

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload, *, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if raw is None else "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a read timeout): expected in slow tests

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.posts += 1
                if fake.create_mode == "fail_before_create":
                    return self._send(500, {"message": "internal error"})
                if fake.create_mode == "garbage_before_create":
                    return self._send(200, None, raw=b"<html>Bad Gateway</html>")
                transaction = fake._create(body)
                time.sleep(fake.create_delay)
                self._send(200, transaction)

            def do_GET(self):
                parsed = urlparse(self.path)
                parts = parsed.path.rstrip("/").split("/")
                if parts[-1] == "transactions":
                    ref = parse_qs(parsed.query).get("externalRef", [None])[0]
                    found = [t for t in fake.transactions.values() if ref is None or t["externalRef"] == ref]
                    return self._send(200, {"data": found})
                try:
                    return self._send(200, fake.transactions[int(parts[-1])])
                except (KeyError, ValueError):
                    return self._send(404, {"message": "not found"})

        return Handler
