/*
 * The checkout page's card form (contract §3, §4). The card never leaves this
 * browser: the gateway's tokenizer (JUNGLEPAY_JS_URL, loaded by the page)
 * turns it into a hash, and only the hash goes to POST /api/checkout/card.
 * The form's inputs have no name, so nothing of them is ever submitted.
 *
 * checkout.js tells this script when to show the form (the "cf:checkout" event
 * with stage "card"); this script tells checkout.js what happened:
 *   "cf:card-result" {status: "paid" | "processing"}  → confirmation, or wait for the postback
 *   "cf:pay-by-pix"                                    → the buyer switches to PIX in place
 * A refusal is shown here, with the bank's reason; the buyer may try another card.
 */
(function () {
  "use strict";

  var root = document.getElementById("checkout");
  var dataNode = document.getElementById("checkout-data");
  var form = document.getElementById("card-form");
  if (!root || !dataNode || !form) { return; }
  var data = JSON.parse(dataNode.textContent);
  if (!data.card) { return; }
  var state = { checkoutId: null, totalCents: null, sending: false };

  function $(id) { return document.getElementById(id); }
  function msg(name) { return root.getAttribute("data-msg-" + name) || ""; }
  function digits(value) { return (value || "").replace(/\D/g, ""); }
  function formatBRL(cents) {
    var reais = Math.floor(cents / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ".");
    return "R$ " + reais + "," + String(cents % 100).padStart(2, "0");
  }

  // ---- the brand, as the number is typed -------------------------------------
  var BRANDS = [
    ["elo", /^(4011|4312|4389|4514|4576|5041|5066|5067|509|6277|6362|6363|650|6516|6550)/, "Elo"],
    ["hipercard", /^(606282|3841)/, "Hipercard"],
    ["amex", /^3[47]/, "American Express"],
    ["mastercard", /^(5[1-5]|2[2-7])/, "Mastercard"],
    ["visa", /^4/, "Visa"]
  ];
  function brandOf(number) {
    for (var i = 0; i < BRANDS.length; i++) { if (BRANDS[i][1].test(number)) { return BRANDS[i]; } }
    return null;
  }
  var numberInput = $("card-number");
  numberInput.addEventListener("input", function () {
    var d = digits(numberInput.value).slice(0, 19);
    numberInput.value = d.replace(/(\d{4})(?=\d)/g, "$1 ");
    var brand = brandOf(d);
    $("card-brand").textContent = brand ? brand[2] : "";
    $("card-brand").setAttribute("data-brand", brand ? brand[0] : "");
  });
  var expiryInput = $("card-expiry");
  expiryInput.addEventListener("input", function () {
    var d = digits(expiryInput.value).slice(0, 4);
    expiryInput.value = d.length > 2 ? d.slice(0, 2) + "/" + d.slice(2) : d;
  });

  // ---- installments: each with its amount; the total never changes -----------
  function fillInstallments(totalCents) {
    var select = $("card-installments");
    select.textContent = "";
    var max = data.card.max_installments || 1;
    for (var n = 1; n <= max; n++) {
      var each = Math.ceil(totalCents / n);
      var option = document.createElement("option");
      option.value = String(n);
      option.textContent = (n === 1 ? msg("installment-one") : msg("installments").replace("%(count)d", String(n)))
        .replace("%(amount)s", formatBRL(each));
      select.appendChild(option);
    }
    select.closest(".field").hidden = max <= 1;
  }

  // ---- errors -----------------------------------------------------------------
  function showError(text) {
    $("card-error").textContent = text || "";
    $("card-error").hidden = !text;
  }
  function forgetCard() {
    // What was typed stays in this page only as long as it is needed.
    numberInput.value = "";
    $("card-cvv").value = "";
    $("card-brand").textContent = "";
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (json) {
        return { ok: response.ok, status: response.status, json: json };
      });
    });
  }

  function tell(name, detail) { document.dispatchEvent(new CustomEvent(name, { detail: detail || {} })); }

  // ---- submit: encrypt here, send the hash only ------------------------------------
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (state.sending || !state.checkoutId) { return; }
    showError("");
    var expiry = digits(expiryInput.value);
    var card = {
      number: digits(numberInput.value),
      holderName: $("card-holder").value.trim(),
      expMonth: expiry.slice(0, 2),
      expYear: expiry.length === 4 ? "20" + expiry.slice(2) : "",
      cvv: digits($("card-cvv").value)
    };
    if (card.number.length < 13 || !card.holderName || !card.expYear || card.cvv.length < 3) {
      showError(msg("card-invalid"));
      return;
    }
    var tokenizer = window.JunglePagamentos;
    if (!tokenizer) { showError(msg("network")); return; }
    state.sending = true;
    var button = $("card-submit");
    var label = button.textContent;
    button.textContent = msg("processing");
    button.disabled = true;
    function done() { state.sending = false; button.textContent = label; button.disabled = false; }

    tokenizer.setPublicKey(data.card.public_key);
    if (data.card.test_mode && tokenizer.setTestMode) { tokenizer.setTestMode(true); }
    Promise.resolve(tokenizer.encrypt(card)).then(function (hash) {
      card = null;  // the number and CVV go no further than the tokenizer
      return postJSON(data.api.card, {
        checkout_id: state.checkoutId,
        card_hash: hash,
        installments: parseInt($("card-installments").value, 10) || 1
      });
    }, function () {
      throw { invalid: true };
    }).then(function (result) {
      done();
      if (result.ok) {
        forgetCard();
        tell("cf:card-result", { status: result.json.status });
        return;
      }
      var error = result.json && result.json.error;
      if (result.status === 402) { forgetCard(); numberInput.focus(); }
      showError((error && error.message) || msg("network"));
    }).catch(function (problem) {
      done();
      showError(problem && problem.invalid ? msg("card-invalid") : msg("network"));
    });
  });

  var toPix = $("card-to-pix");
  if (toPix) {
    toPix.addEventListener("click", function () {
      forgetCard();
      showError("");
      tell("cf:pay-by-pix");
    });
  }

  document.addEventListener("cf:checkout", function (event) {
    var detail = event.detail || {};
    if (detail.stage !== "card") { return; }
    state.checkoutId = detail.checkoutId;
    state.totalCents = detail.totalCents;
    fillInstallments(detail.totalCents || 0);
    $("card-pay").hidden = false;
    numberInput.focus();
  });
})();
