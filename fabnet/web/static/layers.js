// Layer slider on the task page: fetch the chosen layer's SVG and swap it in.
(function () {
  "use strict";
  var slider = document.getElementById("layer-slider");
  if (!slider) return;
  var view = document.getElementById("layer-view");
  var number = document.getElementById("layer-number");
  var pending = null;
  function load() {
    var n = slider.value;
    number.textContent = String(Number(n) + 1);
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(slider.dataset.url + n + ".svg", { signal: pending.signal, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("layer " + n + ": HTTP " + r.status); return r.text(); })
      .then(function (svg) { view.innerHTML = svg; })
      .catch(function (err) { if (err.name !== "AbortError" && window.console) console.error(err); });
  }
  slider.addEventListener("input", load);
})();
