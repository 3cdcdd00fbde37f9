/*
 * A stand-in for JunglePay's card tokenizer (JUNGLEPAY_JS_URL), for the sandbox
 * gateway (`make run`) and the tests: the same interface as the real one —
 * JunglePagamentos.setPublicKey(pk), setTestMode(on), await encrypt({number,
 * holderName, expMonth, expYear, cvv}) → a card hash. The hash carries only what
 * a gateway returns anyway (brand, last digits, expiry, holder): never the
 * number or the CVV. The sandbox and the tests' fake JunglePay decide the charge
 * by the last digits (billing/cards.py TEST_CARDS).
 */
(function () {
  "use strict";
  var publicKey = "";

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = parseInt(number.charAt(number.length - 1 - i), 10);
      if (i % 2 === 1) { digit *= 2; if (digit > 9) { digit -= 9; } }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  function brandOf(number) {
    if (/^4/.test(number)) { return "visa"; }
    if (/^(5[1-5]|2[2-7])/.test(number)) { return "mastercard"; }
    if (/^3[47]/.test(number)) { return "amex"; }
    if (/^(4011|4312|4389|4514|4576|5041|5066|5067|509|6277|6362|6363|650|6516|6550)/.test(number)) { return "elo"; }
    if (/^(606282|3841)/.test(number)) { return "hipercard"; }
    return "unknown";
  }

  function base64url(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  window.JunglePagamentos = {
    setPublicKey: function (key) { publicKey = String(key || ""); },
    setTestMode: function () {},
    encrypt: function (card) {
      return new Promise(function (resolve, reject) {
        var number = String(card.number || "").replace(/\D/g, "");
        if (!publicKey) { reject(new Error("public key not set")); return; }
        if (number.length < 13 || !luhn(number)) { reject(new Error("invalid card number")); return; }
        var data = {
          brand: brandOf(number),
          lastDigits: number.slice(-4),
          expMonth: parseInt(card.expMonth, 10),
          expYear: parseInt(card.expYear, 10),
          holderName: String(card.holderName || "")
        };
        resolve("test_" + base64url(JSON.stringify(data)));
      });
    }
  };
}());
