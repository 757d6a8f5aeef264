// Live updates: one EventSource on /events; elements name the snapshot field they show.
//   data-live="a.b.c"        text content
//   data-live-class="prefix" with data-live: also swaps the class prefix+value (state pills)
//   data-live-width="a.b"    style width = value (0..1) as a percentage
//   data-live-html="a.b"     inner HTML (server-drawn SVG)
(function () {
  "use strict";
  var body = document.body;
  var params = new URLSearchParams();
  if (body.dataset.liveView) params.set("view", body.dataset.liveView);
  if (body.dataset.liveJob) params.set("job", body.dataset.liveJob);
  var dot = document.getElementById("live-dot");

  function lookup(snapshot, path) {
    var value = snapshot;
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (value === null || typeof value !== "object" || !(parts[i] in value)) return undefined;
      value = value[parts[i]];
    }
    return value;
  }

  function apply(snapshot) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var value = lookup(snapshot, el.dataset.live);
      if (value === undefined) {
        if (el.dataset.live.indexOf("machine_counts.") === 0) el.textContent = "0";
        return;
      }
      var text = String(value);
      if (el.textContent !== text) el.textContent = text;
      var prefix = el.dataset.liveClass;
      if (prefix) {
        Array.prototype.slice.call(el.classList).forEach(function (c) {
          if (c.indexOf(prefix) === 0) el.classList.remove(c);
        });
        el.classList.add(prefix + text);
      }
    });
    document.querySelectorAll("[data-live-width]").forEach(function (el) {
      var value = lookup(snapshot, el.dataset.liveWidth);
      if (typeof value === "number") el.style.width = (Math.max(0, Math.min(1, value)) * 100).toFixed(1) + "%";
    });
    document.querySelectorAll("[data-live-html]").forEach(function (el) {
      var value = lookup(snapshot, el.dataset.liveHtml);
      if (typeof value === "string" && el.dataset.liveLast !== value) {
        el.innerHTML = value;
        el.dataset.liveLast = value;
      }
    });
    body.dataset.liveAt = snapshot.t || "";
    body.dataset.liveCount = String(Number(body.dataset.liveCount || "0") + 1);
  }

  if (!window.EventSource) return;
  var source = new EventSource("/events?" + params.toString());
  source.onmessage = function (event) {
    try {
      apply(JSON.parse(event.data));
      if (dot) dot.className = "live-dot on";
    } catch (err) {
      if (window.console) console.error("fabnet live update failed", err);
    }
  };
  source.onerror = function () {
    if (dot) dot.className = "live-dot off";
  };
  // free the connection at once when leaving: browsers allow only six per host
  window.addEventListener("pagehide", function () { source.close(); });
})();
