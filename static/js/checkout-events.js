/*
 * The checkout page's live line to the server (contract §3):
 *   listen()  GET /api/checkout/events/<id> (server-sent events): the payment is pushed the moment it is
 *             applied; when the stream breaks (no EventSource, an error, a proxy cutting it, `timeout`)
 *             the page goes back to polling (checkout.js).
 *   signIn()  once paid, POST /api/checkout/<id>/sign-in: a guest who paid in this browser is signed in
 *             to the account the payment created, so the content opens with no e-mail round trip.
 * checkout.js calls both; nothing here touches the page's steps.
 */
(function () {
  "use strict";

  // No `connected` this long after opening: the stream is taken for broken (a proxy holding it back).
  var CONNECT_WITHIN_MS = 5000;

  function listen(url, onStatus, onBroken) {
    var finished = false;
    var source = null;
    var watchdog = null;
    function finish() {
      finished = true;
      clearTimeout(watchdog);
      if (source) { source.close(); }
    }
    function broken() {
      if (finished) { return; }
      finish();
      onBroken();
    }
    function payload(event) {
      try { return JSON.parse(event.data); } catch (e) { return null; }
    }
    if (!window.EventSource) { setTimeout(onBroken, 0); return { close: finish }; }
    try { source = new EventSource(url, { withCredentials: true }); } catch (e) { setTimeout(onBroken, 0); return { close: finish }; }
    watchdog = setTimeout(broken, CONNECT_WITHIN_MS);
    source.addEventListener("connected", function (event) {
      clearTimeout(watchdog);
      var data = payload(event);
      if (data) { onStatus(data); }
    });
    ["payment_confirmed", "payment_failed"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data = payload(event);
        finish();
        if (data) { onStatus(data); } else { onBroken(); }
      });
    });
    // After 15 minutes the server ends the stream: the (slow) polling takes over from there.
    source.addEventListener("timeout", broken);
    source.onerror = broken;
    return { close: finish };
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // Resolves with the account's JSON when this browser was signed in, or null (not this browser's
  // purchase, an account that existed before, already signed in): the page then says what it always said.
  function signIn(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }, function () { return null; });
  }

  // Signed in where they paid: say so on the success step.
  document.addEventListener("cf:signed-in", function () {
    var note = document.getElementById("signed-in-note");
    if (note) { note.hidden = false; }
  });

  window.CheckoutEvents = { listen: listen, signIn: signIn };
})();
