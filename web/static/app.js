// envy dashboard: small enhancements; every page works without them.
(function () {
  "use strict";

  // Live filter of the scopes tree while typing in the search box.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.querySelector(input.getAttribute("data-filter"));
    if (!table) return;
    var empty = document.getElementById(table.id + "-empty");
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      var rows = table.querySelectorAll("tbody tr");
      var shown = 0;
      var keep = {};
      rows.forEach(function (tr) {
        var p = tr.getAttribute("data-path").toLowerCase();
        if (!tr.classList.contains("group") && p.indexOf(q) >= 0) {
          shown++;
          var segs = p.split("/");
          for (var i = 1; i < segs.length; i++) keep[segs.slice(0, i).join("/")] = true;
          keep[p] = true;
        }
      });
      rows.forEach(function (tr) {
        tr.hidden = !keep[tr.getAttribute("data-path").toLowerCase()];
      });
      table.parentElement.hidden = shown === 0;
      if (empty) empty.hidden = shown !== 0;
    });
  });

  // Hide a revealed value again after a while.
  function hideLater(code, badge, seconds, button) {
    setTimeout(function () {
      code.textContent = code.getAttribute("data-mask");
      code.classList.add("masked");
      if (badge) badge.remove();
      if (button) button.textContent = "Reveal";
    }, seconds * 1000);
  }
  document.querySelectorAll("[data-revealed]").forEach(function (badge) {
    var code = badge.parentElement.querySelector("code.value");
    hideLater(code, badge, parseInt(badge.getAttribute("data-revealed"), 10) || 30, null);
  });

  // Reveal a secret in place: the server checks the permission and audits
  // the reveal; the value is hidden again after a while.
  document.querySelectorAll("form.reveal-form").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var name = form.querySelector("input[name=name]").value;
      var code = document.querySelector('code[data-value-of="' + CSS.escape(name) + '"]');
      var button = form.querySelector("button");
      fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (res) {
        return res.json().then(function (body) { return { ok: res.ok, status: res.status, body: body }; });
      }).then(function (r) {
        if (!r.ok) {
          if (r.status === 401) { window.location.reload(); return; }
          code.textContent = r.body.error || "Could not reveal the value.";
          return;
        }
        code.textContent = r.body.value;
        code.classList.remove("masked");
        var badge = document.createElement("span");
        badge.className = "badge warn";
        badge.textContent = "revealed";
        code.after(" ", badge);
        button.textContent = "Revealed";
        hideLater(code, badge, r.body.hide_after || 30, button);
      }).catch(function () {
        code.textContent = "Could not reach the server.";
      });
    });
  });

  // Copy the new token to the clipboard.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var input = document.querySelector(b.getAttribute("data-copy"));
      input.select();
      var done = function () { b.textContent = "Copied"; };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });

  // The sync page follows the scope's status from the event stream.
  var sync = document.getElementById("sync");
  if (sync && window.EventSource) {
    var summary = document.getElementById("sync-summary");
    var wrap = document.getElementById("consumers-wrap");
    var tbody = document.querySelector("#consumers tbody");
    var live = document.getElementById("live-state");
    var es = new EventSource(sync.getAttribute("data-events"));
    es.addEventListener("status", function (ev) {
      var st = JSON.parse(ev.data);
      var n = st.consumers.length;
      // The same sentences as the page's template.
      var r = st.revision;
      if (n === 0) summary.textContent = "No consumer has reported in the last minute. Revision " + r + " is current.";
      else if (n === 1) summary.textContent = st.synced ? "The one consumer runs revision " + r + "." : "The one consumer is behind revision " + r + ".";
      else if (st.synced) summary.textContent = "All " + n + " consumers run revision " + r + ".";
      else summary.textContent = st.behind + " of " + n + " consumers " + (st.behind === 1 ? "is" : "are") + " behind revision " + r + ".";
      wrap.hidden = n === 0;
      tbody.replaceChildren();
      st.consumers.forEach(function (c) {
        var tr = document.createElement("tr");
        [["code", c.id], ["", c.hostname], ["num", String(c.pid)], ["num", String(c.revision)], ["", c.seen_at]].forEach(function (cell) {
          var td = document.createElement("td");
          if (cell[0] === "code") {
            var code = document.createElement("code");
            code.textContent = cell[1];
            td.appendChild(code);
          } else {
            if (cell[0]) td.className = cell[0];
            td.textContent = cell[1];
          }
          tr.appendChild(td);
        });
        var state = document.createElement("td");
        var badge = document.createElement("span");
        badge.className = c.behind ? "badge warn" : "badge ok";
        badge.textContent = c.behind ? "behind" : "up to date";
        state.appendChild(badge);
        tr.appendChild(state);
        tbody.appendChild(tr);
      });
      sync.setAttribute("data-revision", String(st.revision));
    });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) {
        live.textContent = "Live updates stopped: your session may have ended. Reload the page.";
      }
    });
  }
})();
