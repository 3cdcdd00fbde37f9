"""
The outside world of the rehearsal, in this process: an SMTP sink the site
really sends to, and a fake JunglePay (the tests' own) that can pay a charge
and then posts a real postback to the URL the site gave it.
"""

import email
import email.policy
import threading
from datetime import UTC, datetime

import requests
from aiosmtpd.controller import Controller

from tests.fakes.junglepay import FakeJunglePay


class SmtpSink:
    """aiosmtpd on 127.0.0.1: keeps every message it receives, parsed."""

    def __init__(self, port: int):
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def find(self, *, to: str, contains: str = "") -> list[email.message.EmailMessage]:
        with self._lock:
            found = []
            for message in self.messages:
                if to.lower() not in str(message["To"]).lower():
                    continue
                if contains and contains not in body_text(message):
                    continue
                found.append(message)
            return found


def body_text(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


class PayingJunglePay(FakeJunglePay):
    """The fault tests' fake JunglePay, plus what a real one does when a buyer pays: a postback."""

    def _create(self, body: dict) -> dict:
        transaction = super()._create(body)
        transaction["postbackUrl"] = body.get("postbackUrl", "")
        return transaction

    def latest_for(self, external_ref_prefix: str = "") -> dict | None:
        with self._lock:
            found = [t for t in self.transactions.values() if str(t.get("externalRef") or "").startswith(external_ref_prefix)]
        return found[-1] if found else None

    def pay(self, transaction_id: int) -> requests.Response:
        """Mark the charge paid and post the postback like JunglePay does (the site then fetches it back)."""
        with self._lock:
            transaction = self.transactions[transaction_id]
            transaction["status"] = "paid"
            transaction["paidAt"] = datetime.now(UTC).isoformat()
            snapshot = {key: value for key, value in transaction.items() if key != "postbackUrl"}
        postback = {
            "id": 900000 + transaction_id,
            "type": "transaction",
            "objectId": str(transaction_id),
            "url": transaction["postbackUrl"],
            "data": snapshot,
        }
        return requests.post(transaction["postbackUrl"], json=postback, timeout=30)
