// lockbox dashboard: progressive enhancement only; every page works without it.
// Reveal fetches a secret's value on demand (an audited read); Copy copies a
// shown value (fetching it first when still hidden); forms marked
// data-confirm ask before submitting. On the secrets grid, each key becomes
// a button that opens the row editor (one form for every environment)
// under its row.
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
  function openRowEditor(btn) {
    var tr = btn.closest("tr");
    var next = tr.nextElementSibling;
    if (next && next.classList.contains("row-editor")) { next.remove(); btn.setAttribute("aria-expanded", "false"); return; }
    var tpl = document.getElementById("row-editor");
    var row = tpl.content.firstElementChild.cloneNode(true);
    row.querySelector("input[name=key]").value = tr.dataset.key;
    tr.after(row);
    btn.setAttribute("aria-expanded", "true");
    var first = row.querySelector("textarea");
    if (first) { first.focus(); }
  }
  if (document.getElementById("row-editor")) {
    document.querySelectorAll("#secrets-grid tbody tr[data-key] > th > code").forEach(function (code) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "key-edit";
      b.setAttribute("aria-expanded", "false");
      b.setAttribute("aria-label", "Edit " + code.textContent + " in every environment");
      code.replaceWith(b);
      b.appendChild(code);
    });
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) { return; }
    if (btn.classList.contains("key-edit")) {
      ev.preventDefault();
      openRowEditor(btn);
    } else if (btn.classList.contains("row-edit-cancel")) {
      ev.preventDefault();
      var row = btn.closest("tr.row-editor");
      var key = row.previousElementSibling.querySelector("button.key-edit");
      row.remove();
      if (key) { key.setAttribute("aria-expanded", "false"); key.focus(); }
    }
  });
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { ev.preventDefault(); }
  });
})();
