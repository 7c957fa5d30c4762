// lockbox dashboard: progressive enhancement only; every page works without it.
// Reveal fetches a secret's value on demand (an audited read); Copy copies a
// shown value (fetching it first when still hidden); forms marked
// data-confirm ask before submitting.
(function () {
  "use strict";
  function reveal(btn) {
    var target = document.getElementById(btn.dataset.target);
    return fetch(btn.dataset.reveal, { headers: { Accept: "text/plain" }, credentials: "same-origin" })
      .then(function (r) {
        return r.text().then(function (t) {
          if (!r.ok) { throw new Error(t); }
          return t;
        });
      })
      .then(function (t) {
        target.textContent = t;
        target.classList.remove("masked");
        target.dataset.revealed = "1";
        if (!btn.dataset.label) { btn.dataset.label = btn.textContent; }
        btn.textContent = "Hide";
        return t;
      })
      .catch(function (e) { target.textContent = e.message; });
  }
  function hide(btn) {
    var target = document.getElementById(btn.dataset.target);
    target.textContent = "••••••••";
    target.classList.add("masked");
    delete target.dataset.revealed;
    btn.textContent = btn.dataset.label || "Reveal";
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) { return; }
    if (btn.dataset.reveal) {
      ev.preventDefault();
      var t = document.getElementById(btn.dataset.target);
      if (t.dataset.revealed) { hide(btn); } else { reveal(btn); }
    } else if (btn.dataset.copy) {
      ev.preventDefault();
      var el = document.getElementById(btn.dataset.copy);
      var rb = document.querySelector("button[data-reveal][data-target='" + btn.dataset.copy + "']");
      var p = (rb && !el.dataset.revealed) ? reveal(rb) : Promise.resolve(el.textContent);
      p.then(function (text) {
        if (navigator.clipboard) { return navigator.clipboard.writeText(text); }
      }).then(function () {
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = "Copy"; }, 1500);
      }).catch(function () { btn.textContent = "Copy failed"; });
    }
  });
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { ev.preventDefault(); }
  });
})();
