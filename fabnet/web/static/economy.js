// The economy on the dashboard (issue 11): the design page's price box asks POST
// /api/v1/quotes for the quantity and material chosen; a done part's page accepts or rejects
// it through POST /api/v1/tasks/<id>/accept|reject. Session cookie + the page's CSRF token.
(function () {
  "use strict";

  function csrf() {
    const field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  async function api(path, body) {
    const answer = await fetch("/api/v1" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(data.message || answer.status + " " + answer.statusText);
    return data;
  }

  function credits(mc) {  // exact: integer milli-credits as credits with three decimals
    if (mc === null || mc === undefined) return "-";
    const sign = mc < 0 ? "-" : "";
    const abs = Math.abs(mc);
    return sign + Math.floor(abs / 1000) + "." + String(abs % 1000).padStart(3, "0");
  }

  function show(id, text) {
    const el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  const box = document.getElementById("price-box");
  if (box) {
    document.getElementById("quote-button").addEventListener("click", async () => {
      show("quote-error", "");
      try {
        const q = await api("/quotes", {
          design: box.dataset.design,
          quantity: Number(document.getElementById("quantity").value),
          material: document.getElementById("material").value,
        });
        if (q.lowest_mc === null) {
          document.getElementById("quote-result").hidden = true;
          show("quote-error", "No machine can make this in " + q.material + " now.");
          return;
        }
        document.getElementById("quote-lowest").textContent = credits(q.lowest_mc);
        document.getElementById("quote-typical").textContent = credits(q.typical_mc);
        document.getElementById("quote-eta").textContent = q.eta_hours.toFixed(1);
        document.getElementById("quote-count").textContent = String(q.machines.length);
        document.getElementById("quote-machines").textContent =
          q.machines.map((m) => m.machine + " " + credits(m.total_mc)).join(", ");
        const value = q.terms.credit_value * q.typical_mc / 1000;
        document.getElementById("quote-currency").textContent =
          "(≈ " + value.toFixed(2) + " " + q.terms.currency + ")";
        document.getElementById("quote-result").hidden = false;
        const budget = document.getElementById("budget");
        if (budget) budget.placeholder = "e.g. " + credits(q.highest_mc);
      } catch (err) {
        show("quote-error", String(err.message || err));
      }
    });
  }

  const review = document.getElementById("review-box");
  if (review) {
    const task = review.dataset.task;
    const done = (text) => {
      show("review-error", "");
      show("review-result", text);
      review.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      setTimeout(() => window.location.reload(), 600);
    };
    const accept = document.getElementById("accept-task");
    if (accept) {
      accept.addEventListener("click", async () => {
        try {
          const paid = await api("/tasks/" + task + "/accept");
          done("Accepted: " + credits(paid.paid_mc) + " credits paid.");
        } catch (err) {
          show("review-error", String(err.message || err));
        }
      });
    }
    const reject = document.getElementById("reject-task");
    if (reject) {
      reject.addEventListener("click", async () => {
        try {
          const moved = await api("/tasks/" + task + "/reject", {
            reason: document.getElementById("reject-reason").value,
            detail: document.getElementById("reject-detail").value,
          });
          done("Rejected: the part is " + moved.state + " again.");
        } catch (err) {
          show("review-error", String(err.message || err));
        }
      });
    }
  }
})();
