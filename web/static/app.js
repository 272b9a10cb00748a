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
  // Delegated, so that rows a live update brings in reveal too.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form.reveal-form")) return;
    (function () {
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
    })();
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

  // The scope page follows the scope: when its revision moves (the event
  // stream's "scope" events), the page is fetched again and its parts
  // replaced in place. A var whose edit or delete form is open (or typed
  // in) keeps the form as it was loaded, marked as changed: saving it then
  // shows both values (the form carries the version it was loaded with).
  // So does the form of the scope's description and inherits, marked when
  // they changed (it carries them as loaded); a var's change alone is no
  // change of it.
  var scopeLive = document.getElementById("scope-live");
  if (scopeLive && window.EventSource && window.fetch && window.DOMParser) {
    var shownRev = parseInt(scopeLive.getAttribute("data-revision"), 10) || 0;
    var busy = false, again = false;
    var stopped = function (why) {
      scopeLive.textContent = why;
      ses.close();
    };
    // A part is kept while one of its forms is open or has been typed in.
    var isOpen = function (el) {
      if (!el) return false;
      if (el.querySelector("details[open]")) return true;
      return Array.prototype.some.call(el.querySelectorAll("input, textarea"), function (f) {
        if (f.type === "hidden") return false;
        if (f.type === "checkbox" || f.type === "radio") return f.checked !== f.defaultChecked;
        // A one-line field drops the line breaks of the value it was
        // loaded with (a description may have some): not typed in.
        var loaded = f.tagName === "INPUT" ? f.defaultValue.replace(/[\r\n]/g, "") : f.defaultValue;
        return f.value !== loaded;
      });
    };
    var note = function (tr, text) {
      var th = tr.querySelector("th");
      var n = th.querySelector(".changed-elsewhere");
      if (!n) {
        n = document.createElement("div");
        n.className = "note changed-elsewhere";
        th.appendChild(n);
      }
      n.textContent = text;
    };
    var replace = function (doc, sel) {
      var now = document.querySelector(sel), next = doc.querySelector(sel);
      if (now && next && !isOpen(now)) now.replaceWith(document.importNode(next, true));
    };
    var updateOwn = function (doc) {
      var sel = 'section[aria-labelledby="own-h"]';
      var now = document.querySelector(sel), next = doc.querySelector(sel);
      if (!now || !next) return;
      var tbody = now.querySelector("#own-vars tbody"), nextBody = next.querySelector("#own-vars tbody");
      if (!tbody || !nextBody) {
        if (!isOpen(now)) now.replaceWith(document.importNode(next, true));
        return;
      }
      var old = {};
      tbody.querySelectorAll("tr[data-name]").forEach(function (tr) { old[tr.getAttribute("data-name")] = tr; });
      var rows = [];
      nextBody.querySelectorAll("tr[data-name]").forEach(function (tr) {
        var name = tr.getAttribute("data-name"), was = old[name];
        delete old[name];
        if (was && isOpen(was)) {
          if (was.getAttribute("data-version") !== tr.getAttribute("data-version")) {
            note(was, name + " changed elsewhere since you opened this form (now version " + tr.getAttribute("data-version") + "): saving shows you both.");
          }
          rows.push(was);
        } else {
          rows.push(document.importNode(tr, true));
        }
      });
      Object.keys(old).forEach(function (name) {
        if (isOpen(old[name])) {
          note(old[name], name + " was deleted elsewhere since you opened this form: saving shows you both.");
          rows.push(old[name]);
        }
      });
      tbody.replaceChildren.apply(tbody, rows);
    };
    var updateSettings = function (doc) {
      var sel = 'section[aria-labelledby="set-h"]';
      var now = document.querySelector(sel), next = doc.querySelector(sel);
      if (!now || !next) return;
      var form = now.querySelector("form.settings-form");
      if (!form || !isOpen(now)) {
        now.replaceWith(document.importNode(next, true));
        return;
      }
      var shown = now.querySelector(".inherits-shown"), nextShown = next.querySelector(".inherits-shown");
      if (shown && nextShown) shown.replaceWith(document.importNode(nextShown, true));
      var was = function (f, name) {
        var i = f && f.querySelector('input[name="' + name + '"]');
        return i ? i.value : null;
      };
      var nextForm = next.querySelector("form.settings-form");
      var changed = !nextForm || ["description_was", "inherits_was"].some(function (n) {
        return was(form, n) !== was(nextForm, n);
      });
      var n = form.querySelector(".changed-elsewhere");
      if (!changed) {
        if (n) n.remove();
        return;
      }
      if (!n) {
        n = document.createElement("p");
        n.className = "note changed-elsewhere";
        form.insertBefore(n, form.querySelector("button[type=submit]"));
      }
      n.textContent = "The description or inherits changed elsewhere since you opened this form: saving shows you both.";
    };
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(window.location.pathname, { credentials: "same-origin", headers: { "X-Envy-Live": "1" } }).then(function (res) {
        return res.text();
      }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("scope-live");
        if (!next) { stopped("Live updates stopped: your session may have ended. Reload the page."); return; }
        var rev = parseInt(next.getAttribute("data-revision"), 10) || 0;
        if (rev <= shownRev) return;
        shownRev = rev;
        scopeLive.setAttribute("data-revision", String(rev));
        replace(doc, ".head");
        updateOwn(doc);
        replace(doc, 'section[aria-labelledby="inh-h"]');
        updateSettings(doc);
        scopeLive.textContent = "Live: updated to revision " + rev + ".";
      }).catch(function () {
        scopeLive.textContent = "Live updates paused: could not reach the server.";
      }).then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
    };
    var ses = new EventSource(scopeLive.getAttribute("data-events"));
    scopeLive.textContent = "Live: this page updates itself when the scope changes.";
    ses.addEventListener("scope", function (ev) {
      if (JSON.parse(ev.data).revision > shownRev) refresh();
    });
    ses.addEventListener("error", function () {
      if (ses.readyState === EventSource.CLOSED) stopped("Live updates stopped: your session may have ended. Reload the page.");
    });
  }
})();
