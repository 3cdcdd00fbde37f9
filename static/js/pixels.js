/*
 * The ad platforms' browser pixels (integrations.pixels). The server includes this file only
 * after the visitor accepted the cookie banner, with a JSON data block ("pixel-config") naming
 * the platforms their consent allows: {meta|ga4|tiktok: {id, script}}. No inline script: the
 * platforms' queues are set up here and their own scripts appended from their origins, which
 * the page's Content-Security-Policy lists for this response only.
 *
 * Events: PageView on every page; ViewContent / InitiateCheckout from the page's body
 * (data-pixel-event, data-pixel-content-id, data-pixel-value); AddPaymentInfo when the PIX is
 * shown and Purchase when the server reports it paid, except a free trial's (checkout.js's
 * "cf:checkout" event). The
 * Purchase event id is the checkout's id, the one the server's Conversions API call uses,
 * so each platform keeps one of the two.
 */
(function () {
  "use strict";

  var node = document.getElementById("pixel-config");
  if (!node) { return; }
  var config = JSON.parse(node.textContent);

  function load(src) {
    var script = document.createElement("script");
    script.async = true;
    script.src = src;
    document.head.appendChild(script);
  }
  function newEventId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }
  function reais(cents) { return Math.round(cents) / 100; }

  var senders = [];

  // ---- Meta Pixel: fbq() queues calls until fbevents.js takes over ---------
  if (config.meta) {
    var fbq = window.fbq = function () {
      if (fbq.callMethod) { fbq.callMethod.apply(fbq, arguments); } else { fbq.queue.push(arguments); }
    };
    if (!window._fbq) { window._fbq = fbq; }
    fbq.push = fbq;
    fbq.loaded = true;
    fbq.version = "2.0";
    fbq.queue = [];
    load(config.meta.script);
    fbq("init", config.meta.id);
    var META_NAMES = { PageView: "PageView", ViewContent: "ViewContent", InitiateCheckout: "InitiateCheckout",
                       AddPaymentInfo: "AddPaymentInfo", Purchase: "Purchase" };
    senders.push(function (name, params, eventId) {
      fbq("track", META_NAMES[name], params, { eventID: eventId });
    });
  }

  // ---- Google Analytics 4: gtag() feeds dataLayer --------------------------
  if (config.ga4) {
    window.dataLayer = window.dataLayer || [];
    var gtag = window.gtag = function () { window.dataLayer.push(arguments); };
    load(config.ga4.script);
    gtag("js", new Date());
    gtag("config", config.ga4.id, { send_page_view: false });
    var GA4_NAMES = { PageView: "page_view", ViewContent: "view_item", InitiateCheckout: "begin_checkout",
                      AddPaymentInfo: "add_payment_info", Purchase: "purchase" };
    senders.push(function (name, params, eventId) {
      var ga = { event_id: eventId };
      if (params.value !== undefined) { ga.value = params.value; ga.currency = params.currency; }
      if (params.content_ids) { ga.items = params.content_ids.map(function (id) { return { item_id: id }; }); }
      if (name === "Purchase") { ga.transaction_id = eventId; }  // GA4 keeps one purchase per transaction id
      gtag("event", GA4_NAMES[name], ga);
    });
  }

  // ---- TikTok pixel: ttq queues [method, args...] until events.js loads ----
  if (config.tiktok) {
    var ttq = window.ttq = window.ttq || [];
    ttq.methods = ["page", "track", "identify", "instances", "debug", "on", "off", "once", "ready", "alias",
                   "group", "enableCookie", "disableCookie", "holdConsent", "revokeConsent", "grantConsent"];
    ttq.setAndDefer = function (target, method) {
      target[method] = function () { target.push([method].concat(Array.prototype.slice.call(arguments, 0))); };
    };
    ttq.methods.forEach(function (method) { ttq.setAndDefer(ttq, method); });
    ttq._i = ttq._i || {};
    ttq._i[config.tiktok.id] = [];
    ttq._i[config.tiktok.id]._u = config.tiktok.script.split("?")[0];
    ttq._t = ttq._t || {};
    ttq._t[config.tiktok.id] = Date.now();
    ttq._o = ttq._o || {};
    ttq._o[config.tiktok.id] = {};
    load(config.tiktok.script);
    var TIKTOK_NAMES = { ViewContent: "ViewContent", InitiateCheckout: "InitiateCheckout",
                         AddPaymentInfo: "AddPaymentInfo", Purchase: "CompletePayment" };
    senders.push(function (name, params, eventId) {
      if (name === "PageView") { ttq.page(); return; }
      ttq.track(TIKTOK_NAMES[name], params, { event_id: eventId });
    });
  }

  function track(name, params, eventId) {
    senders.forEach(function (send) { send(name, params || {}, eventId || newEventId()); });
  }

  track("PageView");

  // The page's own event (creator and post pages: ViewContent; the checkout: InitiateCheckout).
  var page = document.body.dataset;
  if (page.pixelEvent) {
    var params = { content_ids: [page.pixelContentId], content_type: "product" };
    if (page.pixelValue) { params.value = reais(Number(page.pixelValue)); params.currency = "BRL"; }
    track(page.pixelEvent, params);
  }

  // The checkout's stages, told by checkout.js.
  var sent = {};
  document.addEventListener("cf:checkout", function (event) {
    var detail = event.detail || {};
    var name = { pix: "AddPaymentInfo", paid: "Purchase" }[detail.stage];
    if (!name || !detail.checkoutId || sent[name + detail.checkoutId]) { return; }
    if (name === "Purchase" && detail.trial) { return; }  // no money moved: the server sends no Purchase either
    sent[name + detail.checkoutId] = true;
    var params = { content_ids: [page.pixelContentId], content_type: "product", currency: "BRL" };
    if (detail.totalCents !== undefined && detail.totalCents !== null) { params.value = reais(detail.totalCents); }
    track(name, params, name === "Purchase" ? detail.checkoutId : detail.checkoutId + ":pix");
  });
})();
