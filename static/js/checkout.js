/*
 * Checkout in three steps, against the checkout API (contract §3):
 *   1. identification  -> POST /api/checkout/process
 *   2. PIX             -> POST /api/checkout/pix, then the payment is pushed by
 *                         /api/checkout/events/<id> (checkout-events.js); polling GET /api/checkout/<id>
 *                         only when that stream breaks
 *      or card         -> the card form of checkout-card.js (POST /api/checkout/card with the
 *                         tokenizer's hash); "processing" waits for the push like PIX; a refusal lets
 *                         the buyer try another card or switch to PIX in place
 *   3. success         -> shown by itself when the status turns "paid"; a guest who paid here is
 *                         signed in (checkout-events.js signIn)
 * The total shown here is for display only; the server computes the real one.
 */
(function () {
  "use strict";

  var root = document.getElementById("checkout");
  var dataNode = document.getElementById("checkout-data");
  if (!root || !dataNode) { return; }
  var data = JSON.parse(dataNode.textContent);
  // Polling while the buyer pays in their bank app: fast for the first seconds, slower later,
  // and at once when they come back to this tab. [until ms since the QR showed, every ms]; the
  // last (0) holds from then on. bench/launch.py reads this line to poll the same way.
  var POLL_SCHEDULE = [[5000, 1000], [20000, 2500], [0, 5000]];
  var FIELD_NAMES = ["name", "email", "birth_date", "cpf", "phone", "coupon"];
  var TERMINAL = { expired: "expired", failed: "failed", refunded: "refunded", canceled: "canceled" };

  var form = document.getElementById("identify-form");
  var submitButton = document.getElementById("submit-identify");
  var state = { checkoutId: null, totalCents: null, pollTimer: null, countdownTimer: null, done: false, pollStarted: null, polling: false, stream: null, streamBroken: false };

  function msg(name) { return root.getAttribute("data-msg-" + name) || ""; }
  function $(id) { return document.getElementById(id); }

  // ---- money, masks -------------------------------------------------------
  function formatBRL(cents) {
    var reais = Math.floor(Math.abs(cents) / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ".");
    var centavos = String(Math.abs(cents) % 100).padStart(2, "0");
    return (cents < 0 ? "-" : "") + "R$ " + reais + "," + centavos;
  }
  function digits(value) { return (value || "").replace(/\D/g, ""); }
  function maskCPF(value) {
    var d = digits(value).slice(0, 11);
    if (d.length > 9) { return d.replace(/^(\d{3})(\d{3})(\d{3})(\d{1,2})$/, "$1.$2.$3-$4"); }
    if (d.length > 6) { return d.replace(/^(\d{3})(\d{3})(\d{1,3})$/, "$1.$2.$3"); }
    if (d.length > 3) { return d.replace(/^(\d{3})(\d{1,3})$/, "$1.$2"); }
    return d;
  }
  function maskPhone(value) {
    var d = digits(value).slice(0, 11);
    if (d.length > 10) { return d.replace(/^(\d{2})(\d{5})(\d{4})$/, "($1) $2-$3"); }
    if (d.length > 6) { return d.replace(/^(\d{2})(\d{4})(\d{0,4})$/, "($1) $2-$3"); }
    if (d.length > 2) { return d.replace(/^(\d{2})(\d{0,5})$/, "($1) $2"); }
    if (d.length > 0) { return "(" + d; }
    return "";
  }
  var MASKS = { cpf: maskCPF, phone: maskPhone };
  document.querySelectorAll("input[data-mask]").forEach(function (input) {
    var mask = MASKS[input.getAttribute("data-mask")];
    input.addEventListener("input", function () {
      var atEnd = input.selectionStart === input.value.length;
      input.value = mask(input.value);
      if (atEnd) { input.setSelectionRange(input.value.length, input.value.length); }
    });
  });

  // ---- order bumps: the display total -------------------------------------
  function selectedBumps() {
    return Array.prototype.slice.call(form.querySelectorAll("input[name=order_bump_ids]:checked"));
  }
  // The coupon as the server last quoted it (GET /api/coupons/<code>); display only.
  var coupon = { code: "", discount: 0, timer: null, seq: 0 };
  function updateTotal() {
    if (data.summary_fixed) { return; }  // a checkout already made: the server rendered its lines
    // A free trial (no coupon typed) costs nothing today.
    var onTrial = data.trial && !(form.elements.coupon && form.elements.coupon.value.trim());
    var total = onTrial ? 0 : data.plan.price_cents - coupon.discount;
    var discountLine = $("summary-discount");
    if (discountLine) {
      discountLine.hidden = !coupon.discount;
      $("summary-coupon-code").textContent = coupon.code;
      $("summary-discount-amount").textContent = formatBRL(-coupon.discount);
    }
    var lines = $("summary-bumps");
    lines.textContent = "";
    selectedBumps().forEach(function (box) {
      var cents = parseInt(box.getAttribute("data-price-cents"), 10) || 0;
      total += cents;
      var line = document.createElement("div");
      line.className = "line";
      var name = document.createElement("span");
      name.textContent = box.getAttribute("data-name");
      var price = document.createElement("span");
      price.textContent = formatBRL(cents);
      line.appendChild(name);
      line.appendChild(price);
      lines.appendChild(line);
    });
    $("total").textContent = formatBRL(total);
  }
  form.querySelectorAll("input[name=order_bump_ids]").forEach(function (box) {
    box.addEventListener("change", updateTotal);
  });

  // ---- coupon: checked live against the server ----------------------------
  function setCouponError(text) { setFieldError("coupon", text); }
  function checkCoupon() {
    var input = form.elements.coupon;
    if (!input) { return; }
    var code = input.value.trim();
    var seq = ++coupon.seq;
    coupon.code = ""; coupon.discount = 0;
    $("coupon-status").textContent = "";
    setCouponError("");
    updateTotal();
    if (!code) { return; }
    $("coupon-status").textContent = msg("coupon-checking");
    var url = apiUrl("coupon", code) + "?plan_id=" + encodeURIComponent(data.plan.id);
    var email = form.elements.email.value.trim();
    if (email) { url += "&email=" + encodeURIComponent(email); }
    api("GET", url).then(function (result) {
      if (seq !== coupon.seq) { return; }  // a newer check is on its way
      $("coupon-status").textContent = "";
      if (!result.ok) { setCouponError(errorMessage(result)); return; }
      coupon.code = result.json.code;
      coupon.discount = result.json.discount_amount;
      $("coupon-status").textContent = msg("coupon-applied").replace("%(amount)s", formatBRL(coupon.discount));
      updateTotal();
    }, function () { if (seq === coupon.seq) { $("coupon-status").textContent = ""; } });
  }
  if (form.elements.coupon) {
    form.elements.coupon.addEventListener("input", function () {
      clearTimeout(coupon.timer);
      coupon.timer = setTimeout(checkCoupon, 400);
    });
    form.elements.email.addEventListener("change", function () { if (form.elements.coupon.value.trim()) { checkCoupon(); } });
    if (form.elements.coupon.value.trim()) { checkCoupon(); }
  }
  updateTotal();

  // ---- API ----------------------------------------------------------------
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) { return decodeURIComponent(match[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function api(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        return { ok: response.ok, status: response.status, json: json };
      });
    });
  }
  function apiUrl(name, id) { return data.api[name].replace("{id}", encodeURIComponent(id)); }
  function errorMessage(result) {
    if (result.status === 429) { return msg("throttled"); }
    var error = result.json && result.json.error;
    return (error && error.message) || msg("network");
  }

  // ---- step 1 errors ------------------------------------------------------
  // The server says what is wrong (every field at once); a field's message goes as soon as that
  // field is edited, so no stale error sits under a fixed field. The next submit asks the server again.
  function setFieldError(name, text) {
    var p = $("error-" + name), input = form.elements[name];
    if (!p || !input) { return false; }
    p.textContent = text || "";
    p.hidden = !text;
    if (text) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    input.closest(".field").classList.toggle("has-error", !!text);
    return true;
  }
  function clearErrors() {
    $("form-error").hidden = true;
    $("form-error").textContent = "";
    FIELD_NAMES.forEach(function (name) { setFieldError(name, ""); });
  }
  FIELD_NAMES.forEach(function (name) {
    var input = form.elements[name];
    if (!input || name === "coupon") { return; }  // the coupon is checked live on its own
    function clearOwnError() { if (input.getAttribute("aria-invalid")) { setFieldError(name, ""); } }
    input.addEventListener("input", clearOwnError);
    input.addEventListener("change", clearOwnError);  // a date picker may only fire "change"
  });
  function flatten(value) {
    if (Array.isArray(value)) { return value.map(flatten).join(" "); }
    if (value && typeof value === "object") {
      return Object.keys(value).map(function (k) { return flatten(value[k]); }).join(" ");
    }
    return String(value);
  }
  function showErrors(result) {
    var error = (result.json && result.json.error) || {};
    var fields = error.fields || {};
    var unplaced = [];
    var first = null;
    Object.keys(fields).forEach(function (name) {
      var text = flatten(fields[name]);
      if (FIELD_NAMES.indexOf(name) >= 0 && setFieldError(name, text)) {
        first = first || form.elements[name];
      } else {
        unplaced.push(text);
      }
    });
    if (unplaced.length || !Object.keys(fields).length) {
      $("form-error").textContent = unplaced.length ? unplaced.join(" ") : errorMessage(result);
      $("form-error").hidden = false;
    }
    if (first) { first.focus(); }
  }

  function busy(button, on) {
    if (!button) { return; }
    if (on) {
      button.setAttribute("data-label", button.textContent);
      button.textContent = msg("processing");
      button.disabled = true;
    } else {
      if (button.hasAttribute("data-label")) { button.textContent = button.getAttribute("data-label"); }
      button.disabled = false;
    }
  }

  // ---- steps --------------------------------------------------------------
  function goToStep(n) {
    [["step-identify", 1], ["step-pay", 2], ["step-done", 3]].forEach(function (pair) {
      $(pair[0]).hidden = pair[1] !== n;
      var label = $("step-label-" + pair[1]);
      label.classList.toggle("done", pair[1] < n);
      if (pair[1] === n) { label.setAttribute("aria-current", "step"); } else { label.removeAttribute("aria-current"); }
    });
  }

  function rememberCheckout(id) {
    state.checkoutId = id;
    if (window.history && window.history.replaceState) {
      var url = new URL(window.location.href);
      url.searchParams.set("checkout", id);
      window.history.replaceState(null, "", url.toString());
    }
  }

  function showProblem(text) {
    stopTimers();
    $("waiting").hidden = true;
    $("pix-charge").hidden = true;  // no longer payable: do not leave a code to pay
    $("pay-problem-text").textContent = text;
    $("pay-problem").hidden = false;
    var sandbox = $("sandbox");
    if (sandbox) { sandbox.hidden = true; }
    if ($("step-pay").hidden) { goToStep(2); }
  }

  // Tells the page's other scripts (pixels.js) where the checkout stands.
  function announce(stage) {
    document.dispatchEvent(new CustomEvent("cf:checkout", {
      detail: { stage: stage, checkoutId: state.checkoutId, totalCents: state.totalCents, trial: !!data.trial },
    }));
  }

  function showDone() {
    if (state.done) { return; }
    state.done = true;
    announce("paid");
    stopTimers();
    goToStep(3);
    $("step-done").focus();
    if (window.CheckoutEvents && data.api.sign_in && !data.signed_in) {
      window.CheckoutEvents.signIn(apiUrl("sign_in", state.checkoutId)).then(function (account) {
        if (account) { document.dispatchEvent(new CustomEvent("cf:signed-in", { detail: account })); }
      });
    }
  }

  function stopTimers() {
    clearTimeout(state.pollTimer);
    clearInterval(state.countdownTimer);
    if (state.stream) { state.stream.close(); state.stream = null; }
  }

  // Waiting for the payment: pushed by the event stream; polled only once that stream breaks.
  function waitForPayment() {
    if (state.done || state.stream) { return; }
    if (!window.CheckoutEvents || !data.api.events || state.streamBroken) { schedulePoll(); return; }
    state.stream = window.CheckoutEvents.listen(apiUrl("events", state.checkoutId), handleStatus, function () {
      state.stream = null;
      state.streamBroken = true;
      if (!state.done) { schedulePoll(); }
    });
  }

  // "PIX válido até 07/12 às 23:59", in the seller's time (America/Sao_Paulo) whatever the phone's;
  // a calm "expira em 12 min" joins it only in the last hour, refreshed every few seconds, never a ticking clock.
  var PIX_TIME_ZONE = "America/Sao_Paulo";
  var LAST_HOUR_MS = 3600 * 1000;
  function formatExpiry(end) {
    var lang = document.documentElement.lang || "pt-BR";
    var when = new Date(end);
    var date = new Intl.DateTimeFormat(lang, { day: "2-digit", month: "2-digit", timeZone: PIX_TIME_ZONE }).format(when);
    var time = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", timeZone: PIX_TIME_ZONE }).format(when);
    return msg("valid-until").replace("%(date)s", date).replace("%(time)s", time);
  }
  function startCountdown(expiresAt) {
    var expiry = $("pix-expiry"), countdown = $("pix-countdown");
    var end = expiresAt ? Date.parse(expiresAt) : NaN;
    clearInterval(state.countdownTimer);
    countdown.hidden = true;
    if (isNaN(end)) { expiry.textContent = ""; return; }
    expiry.textContent = formatExpiry(end);
    function tick() {
      var left = end - Date.now();
      if (left <= 0) {
        clearInterval(state.countdownTimer);
        countdown.textContent = msg("timeup");
        countdown.hidden = false;
        return;
      }
      if (left > LAST_HOUR_MS) { countdown.hidden = true; return; }
      var minutes = Math.floor(left / 60000);
      countdown.textContent = "· " + (minutes < 1 ? msg("expires-soon") : msg("expires-in").replace("%(minutes)s", minutes));
      countdown.hidden = false;
    }
    tick();
    state.countdownTimer = setInterval(tick, 15000);
  }

  function handleStatus(payload) {
    if (!payload) { return false; }
    if (payload.status === "paid") { showDone(); return true; }
    if (TERMINAL[payload.status]) { showProblem(msg(TERMINAL[payload.status])); return true; }
    return false;
  }

  function pollDelay() {
    var elapsed = Date.now() - (state.pollStarted || Date.now());
    for (var i = 0; i < POLL_SCHEDULE.length; i++) {
      if (!POLL_SCHEDULE[i][0] || elapsed < POLL_SCHEDULE[i][0]) { return POLL_SCHEDULE[i][1]; }
    }
    return POLL_SCHEDULE[POLL_SCHEDULE.length - 1][1];
  }

  function schedulePoll() {
    clearTimeout(state.pollTimer);
    if (state.stream) { return; }  // the stream is listening: no polling beside it
    if (state.pollStarted === null) { state.pollStarted = Date.now(); }
    state.pollTimer = setTimeout(poll, pollDelay());
  }

  function poll() {
    if (state.polling || state.done) { return; }
    state.polling = true;
    api("GET", apiUrl("status", state.checkoutId)).then(function (result) {
      state.polling = false;
      if (state.done) { return; }
      if (result.ok && handleStatus(result.json)) { return; }
      if (result.status === 404) { showProblem(msg("notfound")); return; }
      schedulePoll();
    }, function () {
      // A network blip: keep waiting, the next poll may get through.
      state.polling = false;
      schedulePoll();
    });
  }

  function pollNowIfWaiting() {
    // Back from the bank app: ask at once instead of waiting for the next tick.
    if (state.pollStarted === null || state.done || document.visibilityState === "hidden") { return; }
    clearTimeout(state.pollTimer);
    poll();
  }
  document.addEventListener("visibilitychange", pollNowIfWaiting);
  window.addEventListener("focus", pollNowIfWaiting);

  function showPix(charge) {
    $("pix-charge").hidden = false;
    var qr = $("pix-qr");
    // pix_qr_svg is an SVG document rendered by our own server (segno), not user input.
    qr.innerHTML = charge.pix_qr_svg || "";
    qr.hidden = !charge.pix_qr_svg;
    $("pix-code").value = charge.pix_code || "";
    if (charge.total_amount !== undefined && charge.total_amount !== null) {
      // The server's figure wins over the one computed here for display.
      $("pay-total").textContent = formatBRL(charge.total_amount);
      $("total").textContent = formatBRL(charge.total_amount);
      state.totalCents = charge.total_amount;
    }
    goToStep(2);
    showPayStep();
    startCountdown(charge.expires_at);
    if (!handleStatus(charge)) { announce("pix"); waitForPayment(); }
  }

  // On a phone the summary and the form sit above: bring the QR and its copy button up to the top,
  // and tell a screen reader where it is now (the heading takes the focus without scrolling again).
  function showPayStep() {
    $("step-pay").scrollIntoView({ block: "start" });
    $("pay-title").focus({ preventScroll: true });
  }

  // ---- card: checkout-card.js shows the form and says how the charge went ----
  function showCard(id, totalCents) {
    state.checkoutId = id;
    if (totalCents !== undefined && totalCents !== null) {
      state.totalCents = totalCents;
      $("total").textContent = formatBRL(totalCents);
    }
    $("pix-pay").hidden = true;
    $("waiting").hidden = true;
    if ($("sandbox")) { $("sandbox").hidden = true; }
    goToStep(2);
    $("step-pay").scrollIntoView({ block: "start" });
    announce("card");
  }
  document.addEventListener("cf:card-result", function (event) {
    var status = (event.detail || {}).status;
    if (status === "paid") { showDone(); return; }
    // Processing: the gateway answers later (its postback); the page keeps asking.
    $("card-pay").hidden = true;
    $("waiting").querySelector("span:last-child").textContent = msg("card-processing");
    $("waiting").hidden = false;
    if ($("sandbox")) { $("sandbox").hidden = false; }
    waitForPayment();
  });
  document.addEventListener("cf:pay-by-pix", function () {
    $("card-pay").hidden = true;
    $("pix-pay").hidden = false;
    $("waiting").hidden = false;
    if ($("sandbox")) { $("sandbox").hidden = false; }
    requestPix(state.checkoutId, state.totalCents);
  });
  function chosenMethod() {
    var chosen = form.querySelector("input[name=payment_method]:checked");
    if (chosen) { return chosen.value; }
    return data.card && !data.accepts_pix ? "card" : "pix";
  }

  function requestPix(id, totalCents) {
    return api("POST", data.api.pix, { checkout_id: id }).then(function (result) {
      if (!result.ok) { showProblem(errorMessage(result)); return; }
      if (result.json.total_amount === undefined && totalCents !== undefined) { result.json.total_amount = totalCents; }
      showPix(result.json);
    });
  }

  // ---- a second trial is refused: the paid plan is offered ----------------
  function offerPaidPlan() {
    var button = $("pay-without-trial");
    button.textContent = msg("pay-now");
    $("trial-used").hidden = false;
  }
  $("pay-without-trial").addEventListener("click", function () {
    data.trial = false;
    $("trial-used").hidden = true;
    updateTotal();
    form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
  });

  // ---- step 1 submit ------------------------------------------------------
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    busy(submitButton, true);
    if (data.resume_needs_details) {
      // A renewal without CPF and phone on file: they go with the PIX request of that checkout.
      var details = { checkout_id: data.resume_checkout_id, cpf: digits(form.elements.cpf.value), phone: digits(form.elements.phone.value) };
      api("POST", data.api.pix, details).then(function (result) {
        busy(submitButton, false);
        if (!result.ok) { showErrors(result); return; }
        data.resume_needs_details = false;
        showPix(result.json);
      }, function () {
        busy(submitButton, false);
        $("form-error").textContent = msg("network");
        $("form-error").hidden = false;
      });
      return;
    }
    var method = data.trial ? "pix" : chosenMethod();
    var body = {
      plan_id: data.plan.id,
      payment_method: method,
      order_bump_ids: selectedBumps().map(function (box) { return parseInt(box.value, 10); }),
      name: form.elements.name.value.trim(),
      email: form.elements.email.value.trim(),
      birth_date: form.elements.birth_date.value,
      cpf: digits(form.elements.cpf.value),
      phone: digits(form.elements.phone.value),
      coupon: form.elements.coupon ? form.elements.coupon.value.trim() : "",
      trial: data.trial,
    };
    api("POST", data.api.process, body).then(function (result) {
      if (!result.ok) {
        busy(submitButton, false);
        showErrors(result);
        if (result.json && result.json.error && result.json.error.code === "trial_already_used") { offerPaidPlan(); }
        return;
      }
      rememberCheckout(result.json.checkout_id);
      // The summary takes the server's discount, even when the live coupon check had not answered yet.
      if (body.coupon && result.json.discount_amount) {
        coupon.seq++;  // a check still on its way must not undo this
        coupon.code = body.coupon.toUpperCase();
        coupon.discount = result.json.discount_amount;
        updateTotal();
      }
      if (result.json.status === "paid") {  // nothing to pay
        state.totalCents = result.json.total_amount;
        busy(submitButton, false);
        showDone();
        return;
      }
      if (method === "card") {
        busy(submitButton, false);
        showCard(result.json.checkout_id, result.json.total_amount);
        return;
      }
      return requestPix(result.json.checkout_id, result.json.total_amount).then(function () { busy(submitButton, false); });
    }).catch(function () {
      busy(submitButton, false);
      $("form-error").textContent = msg("network");
      $("form-error").hidden = false;
    });
  });

  // ---- step 2 buttons -----------------------------------------------------
  var copyButton = $("copy-code");
  copyButton.addEventListener("click", function () {
    var input = $("pix-code");
    function copied() {
      copyButton.textContent = msg("copied");
      setTimeout(function () { copyButton.textContent = msg("copy"); }, 2500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, function () { input.select(); document.execCommand("copy"); copied(); });
    } else {
      input.select();
      try { document.execCommand("copy"); } catch (e) { /* the text stays selected for a manual copy */ }
      copied();
    }
  });

  document.querySelectorAll("#sandbox [data-outcome]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!state.checkoutId) { return; }
      busy(button, true);
      api("POST", apiUrl("simulate", state.checkoutId), { outcome: button.getAttribute("data-outcome") }).then(function (result) {
        busy(button, false);
        if (!result.ok) { showProblem(errorMessage(result)); return; }
        $("waiting").querySelector("span:last-child").textContent = msg("simulated");
        // Do not wait for the next tick: ask now.
        clearTimeout(state.pollTimer);
        poll();
      }, function () { busy(button, false); });
    });
  });

  // ---- resume an existing checkout (reload, renewal or upgrade charge) ------
  if (data.resume_checkout_id && data.resume_needs_details) {
    // Step 1 asks only for what the charge lacks (CPF and phone); name and e-mail are on file.
    state.checkoutId = data.resume_checkout_id;
    goToStep(1);
  } else if (data.resume_checkout_id) {
    state.checkoutId = data.resume_checkout_id;
    goToStep(2);
    api("GET", apiUrl("status", state.checkoutId)).then(function (result) {
      if (!result.ok) { showProblem(result.status === 404 ? msg("notfound") : errorMessage(result)); return; }
      if (handleStatus(result.json)) { return; }
      if (data.card && data.resume_method === "card") { showCard(state.checkoutId, result.json.total_amount); return; }
      return requestPix(state.checkoutId, result.json.total_amount);
    }, function () { showProblem(msg("network")); });
  }
})();
