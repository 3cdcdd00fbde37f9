"""
Journey: the cookie banner keeps the tracking pixels off until the visitor
accepts; then Meta, GA4 and TikTok load from their own origins under the
site's CSP (no violation), see PageView, ViewContent, InitiateCheckout,
AddPaymentInfo when the PIX shows, and a Purchase whose event id is the
checkout's id, the one the server's conversion call uses.

The platforms' scripts are local fakes on another origin (a second port) that
record the calls their queues received into `window.__pixelLog`.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.models import Checkout
from integrations.models import TrackingPixels
from tests.factories import GatewayFactory, PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VALID_CPF = "52998224725"

# Each fake takes over its platform's queue the way the real script does, and records the calls.
FAKE_SCRIPTS = {
    "/en_US/fbevents.js": """(function () {
  var log = window.__pixelLog = window.__pixelLog || [];
  var fbq = window.fbq;
  fbq.callMethod = function () { log.push(["meta"].concat(Array.prototype.slice.call(arguments))); };
  fbq.queue.forEach(function (args) { fbq.callMethod.apply(fbq, args); });
  fbq.queue = [];
})();""",
    "/gtag/js": """(function () {
  var log = window.__pixelLog = window.__pixelLog || [];
  function record(args) {
    var call = Array.prototype.slice.call(args);
    if (call[0] !== "js") { log.push(["ga4"].concat(call)); }
  }
  window.dataLayer.forEach(record);
  window.dataLayer.push = record;
})();""",
    "/i18n/pixel/events.js": """(function () {
  var log = window.__pixelLog = window.__pixelLog || [];
  var ttq = window.ttq;
  function record(call) { log.push(["tiktok"].concat(call)); }
  ttq.slice().forEach(record);
  ttq.methods.forEach(function (method) {
    ttq[method] = function () { record([method].concat(Array.prototype.slice.call(arguments))); };
  });
})();""",
}


class FakePlatforms:
    def __init__(self):
        self.requests = []
        platforms = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                platforms.requests.append(self.path)
                body = FAKE_SCRIPTS.get(path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/javascript")
                self.end_headers()
                self.wfile.write((body or "").encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platforms(settings):
    fake = FakePlatforms()
    settings.META_PIXEL_SCRIPT_URL = fake.origin + "/en_US/fbevents.js"
    settings.GA4_TAG_SCRIPT_URL = fake.origin + "/gtag/js"
    settings.TIKTOK_PIXEL_SCRIPT_URL = fake.origin + "/i18n/pixel/events.js"
    TrackingPixels.objects.create(pk=1, meta_pixel_id="123456789012345", ga4_measurement_id="G-AB12CD34", tiktok_pixel_id="CABCDEF123")
    yield fake
    fake.close()


def _submit_details(browser):
    browser.find("#id_name").send_keys("Maria Visitante")
    browser.find("#id_email").send_keys("maria@example.com")
    # a date input's typing order follows the browser's locale: set its value (ISO) directly
    browser.driver.execute_script("document.getElementById('id_birth_date').value = '1990-05-17'")
    browser.find("#id_cpf").send_keys(VALID_CPF)
    browser.find("#id_phone").send_keys("11987654321")
    browser.find("#submit-identify").click()


def _log(browser):
    return browser.driver.execute_script("return window.__pixelLog || []")


def _csp_violations(browser):
    return [e["message"] for e in browser.driver.get_log("browser") if "Content Security Policy" in e["message"]]


def _events(log, platform):
    """(event name, params, options) per tracked event of one platform, in order."""
    out = []
    for call in log:
        if call[0] != platform:
            continue
        if platform == "meta" and call[1] == "track":
            out.append((call[2], call[3], call[4]))
        elif platform == "ga4" and call[1] == "event":
            out.append((call[2], call[3], {}))
        elif platform == "tiktok" and call[1] in ("page", "track"):
            out.append(("page",) if call[1] == "page" else (call[2], call[3], call[4]))
    return out


def test_pixels_stay_off_until_accepted_then_follow_the_buyer_to_purchase(browser, settings, live_server, platforms):
    # given: the three pixels configured, a plan, the sandbox gateway
    settings.SANDBOX_GATEWAY_ALLOWED = True
    plan = PlanFactory(name="Mensal", price_cents=2990)
    GatewayFactory(kind="sandbox", is_active=True)

    # when: a visitor browses without answering the banner
    browser.get("/")
    browser.wait_for("[data-testid=consent-banner]")
    browser.get("/plans/")
    browser.wait_for("[data-testid=plan-card]")

    # then: no platform script was asked for and no queue exists
    assert platforms.requests == []
    assert browser.driver.execute_script("return [typeof window.fbq, typeof window.gtag, typeof window.ttq]") == [
        "undefined", "undefined", "undefined",
    ]
    assert not browser.find_all("#pixel-config")

    # when: they accept
    browser.find("#consent-accept").click()
    browser.wait_until(lambda: not browser.find_all("[data-testid=consent-banner]"), message="banner did not go away")

    # then: the three scripts load from their origin and see the page view
    browser.wait_until(lambda: len(platforms.requests) == 3, message=f"pixel scripts not loaded: {platforms.requests}")
    browser.wait_until(lambda: {c[0] for c in _log(browser)} == {"meta", "ga4", "tiktok"}, message="queues not taken over")
    log = _log(browser)
    assert ["meta", "init", "123456789012345"] in log
    assert any(c[:3] == ["ga4", "config", "G-AB12CD34"] for c in log)
    assert [e[0] for e in _events(log, "meta")] == ["PageView"]
    assert [e[0] for e in _events(log, "ga4")] == ["page_view"]
    assert _events(log, "tiktok") == [("page",)]

    # when: they open the checkout and get their PIX
    browser.get(f"/checkout/{plan.pk}/")
    browser.wait_for("#identify-form")
    browser.wait_until(lambda: len(_events(_log(browser), "meta")) >= 2, message="InitiateCheckout not sent")
    name, params, _ = _events(_log(browser), "meta")[1]
    assert (name, params["value"], params["currency"], params["content_ids"]) == ("InitiateCheckout", 29.9, "BRL", [f"plan:{plan.pk}"])
    _submit_details(browser)
    browser.wait_for("#pix-qr svg", timeout=15)
    checkout = Checkout.objects.get()
    browser.wait_until(lambda: "AddPaymentInfo" in [e[0] for e in _events(_log(browser), "meta")], message="AddPaymentInfo not sent")

    # and the payment is confirmed (the sandbox posts the webhook; the page polls)
    browser.find("#simulate-paid").click()
    browser.wait_for("#step-done", timeout=15)
    browser.wait_until(lambda: "Purchase" in [e[0] for e in _events(_log(browser), "meta")], message="Purchase not sent")

    # then: Purchase carries the checkout's id, the server's event id, and the server's total
    events = {platform: _events(_log(browser), platform) for platform in ("meta", "ga4", "tiktok")}
    purchase = next(e for e in events["meta"] if e[0] == "Purchase")
    assert purchase[1]["value"] == checkout.total_cents / 100 and purchase[1]["currency"] == "BRL"
    assert purchase[2] == {"eventID": str(checkout.public_id)}
    ga4_purchase = next(e for e in events["ga4"] if e[0] == "purchase")
    assert ga4_purchase[1]["transaction_id"] == str(checkout.public_id)
    tiktok_purchase = next(e for e in events["tiktok"] if e[0] == "CompletePayment")
    assert tiktok_purchase[2] == {"event_id": str(checkout.public_id)}
    assert [e[0] for e in events["meta"]] == ["PageView", "InitiateCheckout", "AddPaymentInfo", "Purchase"]
    browser.screenshot("pixels-purchase")

    # and nothing broke the page's policy along the way
    assert _csp_violations(browser) == []


def test_rejecting_the_banner_keeps_every_pixel_off(browser, platforms):
    browser.get("/")
    browser.wait_for("[data-testid=consent-banner]")
    browser.find("#consent-reject").click()
    browser.wait_until(lambda: not browser.find_all("[data-testid=consent-banner]"), message="banner did not go away")
    browser.get("/plans/")
    browser.wait_for("main")

    assert platforms.requests == []
    assert browser.driver.execute_script("return typeof window.fbq") == "undefined"
    assert _csp_violations(browser) == []


def test_a_free_trial_sends_no_purchase_from_the_browser(browser, platforms):
    # given: a visitor who accepted the pixels, on a plan with a 7-day trial
    plan = PlanFactory(name="Mensal", price_cents=2990, trial_days=7)
    GatewayFactory(kind="sandbox", is_active=True)
    browser.get("/")
    browser.find("#consent-accept").click()
    browser.wait_until(lambda: not browser.find_all("[data-testid=consent-banner]"), message="banner did not go away")

    # when: they start the trial (no PIX: it is active at once)
    browser.get(f"/checkout/{plan.pk}/")
    browser.wait_for("#identify-form")
    browser.wait_until(lambda: len(_events(_log(browser), "meta")) == 2, message="the Meta script did not take over")
    _submit_details(browser)
    browser.wait_for("#step-done", timeout=15)
    assert Checkout.objects.get().is_trial

    # then: the checkout was seen, no money moved, so no Purchase (the server sends none either)
    names = [e[0] for e in _events(_log(browser), "meta")]
    assert names == ["PageView", "InitiateCheckout"]
    assert _csp_violations(browser) == []
