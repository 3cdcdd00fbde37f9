"""
A fake JunglePay on 127.0.0.1 (a real HTTP server in a thread), for fault tests:
it can answer slowly, fail, or answer garbage, and it remembers what was created.

Cards: `paymentMethod: "credit_card"` with `card: {hash}` (the test tokenizer's
hash, billing.cards) or `card: {id}` (a card it returned before). The test card's
last digits decide the answer (billing.cards.TEST_CARDS: paid, refused with a
`refusedReason`, processing); `card_outcomes[card_id]` overrides it for a saved
card (a renewal refused). `set_status()` moves a transaction (a processing
charge paid, a chargeback) before the test posts its postback. It also serves
the test tokenizer at `/v1/js` (JUNGLEPAY_JS_URL in the browser tests).
"""

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from billing.cards import read_test_card_hash, test_card_transaction

TOKENIZER = Path(__file__).resolve().parents[2] / "static" / "js" / "junglepay-test-tokenizer.js"


class FakeJunglePay:
    def __init__(self):
        self.transactions: dict[int, dict] = {}
        self.posts = 0
        self.create_delay = 0.0  # seconds before answering a create (the charge exists meanwhile)
        self.get_delay = 0.0  # seconds before answering any GET (a hanging provider)
        self.gets = 0
        # Set while a create or a GET is being answered slowly: a test waits for it to kill the caller mid-call.
        self.create_started = threading.Event()
        self.get_started = threading.Event()
        self.create_mode = "ok"  # "ok" | "fail_before_create" | "garbage_before_create"
        self.bodies: list[dict] = []  # every POST body, as received
        self.cards: dict[str, dict] = {}  # card id -> the card it stands for (no number: brand, last digits)
        self.card_outcomes: dict[str, str] = {}  # card id -> "refused" | "processing" | "paid", for its next charges
        self.refused_with_4xx = False  # answer a refusal with HTTP 402 and the transaction, as some gateways do
        # The day a created PIX is payable through (YYYY-MM-DD): a year from today, never a fixed day.
        self.pix_expiration_date = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()
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

    def postback_body(self, transaction_id) -> bytes:
        transaction = self.transactions[int(transaction_id)]
        return json.dumps(
            {"id": secrets.randbelow(10**9), "type": "transaction", "objectId": str(transaction_id), "data": transaction}
        ).encode()

    def _create_card(self, transaction_id: int, body: dict) -> dict:
        card_in = body.get("card") or {}
        if card_in.get("id"):
            card = self.cards.get(card_in["id"])
            if card is None:
                return {"id": transaction_id, "status": "refused", "refusedReason": {"code": "card_not_found", "message": "Cartão não encontrado"}}
            card_id = card_in["id"]
        else:
            card = read_test_card_hash(str(card_in.get("hash") or ""))
            if card is None:
                return {"error": "invalid card hash"}
            card_id = f"card_{secrets.token_hex(6)}"
            self.cards[card_id] = card
        transaction = test_card_transaction(
            card=card, transaction_id=transaction_id, card_id=card_id, amount_cents=body["amount"], installments=body.get("installments") or 1
        )
        override = self.card_outcomes.get(card_id)
        if override:
            transaction["status"] = override
            if override == "refused":
                transaction["refusedReason"] = {"code": "51", "message": "Saldo insuficiente"}
            else:
                transaction.pop("refusedReason", None)
        if transaction["status"] == "paid":
            transaction["paidAt"] = datetime.now(UTC).isoformat()  # the test's clock (time_machine), never a fixed day
        return transaction

    def mark_paid(self, transaction_id: int) -> dict:
        """The buyer paid: the charge reads `paid` from now on; returns the postback JunglePay would send."""
        with self._lock:
            transaction = self.transactions[transaction_id]
            transaction["status"] = "paid"
            transaction["paidAt"] = datetime.now(UTC).isoformat()
            snapshot = dict(transaction)
        return {"id": 900000 + transaction_id, "type": "transaction", "objectId": str(transaction_id), "data": snapshot}

    def _create(self, body: dict) -> dict:
        with self._lock:
            transaction_id = 1000 + len(self.transactions) + 1
            if body.get("paymentMethod") == "credit_card":
                transaction = self._create_card(transaction_id, body)
                if "error" in transaction:
                    return transaction
                transaction.update(
                    externalRef=body.get("externalRef"), items=body.get("items", []), customer=body.get("customer", {})
                )
                self.transactions[transaction_id] = transaction
                return transaction
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
            self.cards.clear()
            self.card_outcomes.clear()
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
                    fake.bodies.append(body)
                if fake.create_mode == "fail_before_create":
                    return self._send(500, {"message": "internal error"})
                if fake.create_mode == "garbage_before_create":
                    return self._send(200, None, raw=b"<html>Bad Gateway</html>")
                transaction = fake._create(body)
                fake.create_started.set()
                if "error" in transaction:
                    return self._send(422, {"message": "Invalid card hash"})
                time.sleep(fake.create_delay)
                refused = transaction.get("status") == "refused"
                self._send(402 if refused and fake.refused_with_4xx else 200, transaction)

            def do_GET(self):
                with fake._lock:
                    fake.gets += 1
                fake.get_started.set()
                time.sleep(fake.get_delay)
                parsed = urlparse(self.path)
                if parsed.path.endswith("/js"):
                    data = TOKENIZER.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/javascript")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
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
