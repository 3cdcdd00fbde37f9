/* Site-wide behaviour, no inline handlers (the pages run under a strict CSP). */
(function () {
  "use strict";

  // The language switch submits itself when changed.
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Confirm before destructive forms (e.g. cancel subscription).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // Carousels: previous/next buttons and a "2 / 5" counter over a scroll-snap strip.
  document.querySelectorAll("[data-carousel]").forEach(function (carousel) {
    var strip = carousel.querySelector(".slides");
    var slides = strip ? strip.children : [];
    var counter = carousel.querySelector(".counter");
    var prev = carousel.querySelector(".nav.prev");
    var next = carousel.querySelector(".nav.next");
    if (!strip || slides.length < 2) {
      [prev, next, counter].forEach(function (el) { if (el) { el.hidden = true; } });
      return;
    }
    function index() { return Math.round(strip.scrollLeft / Math.max(strip.clientWidth, 1)); }
    function update() {
      var i = index();
      if (counter) { counter.textContent = (i + 1) + " / " + slides.length; }
      if (prev) { prev.disabled = i === 0; }
      if (next) { next.disabled = i >= slides.length - 1; }
      Array.prototype.forEach.call(slides, function (slide, n) {
        slide.setAttribute("aria-hidden", n === i ? "false" : "true");
        var video = slide.querySelector("video");
        if (video && n !== i && !video.paused) { video.pause(); }
      });
    }
    function go(delta) { strip.scrollTo({ left: (index() + delta) * strip.clientWidth }); }
    if (prev) { prev.addEventListener("click", function () { go(-1); }); }
    if (next) { next.addEventListener("click", function () { go(1); }); }
    carousel.addEventListener("keydown", function (event) {
      if (event.key === "ArrowLeft") { go(-1); } else if (event.key === "ArrowRight") { go(1); }
    });
    var timer;
    strip.addEventListener("scroll", function () { clearTimeout(timer); timer = setTimeout(update, 60); });
    update();
  });
})();
