/* Steward consent banner. Served from /consent.js; include it with
 *   <script src="https://STEWARD/consent.js"></script>
 * Mark scripts, iframes and images that need consent, by declared purpose:
 *   <script type="text/plain" data-purpose="site-statistics" src="..."></script>
 *   <iframe data-purpose="videos" data-src="..."></iframe>
 * Open the preferences from any element with `data-steward-preferences`, or call
 * StewardConsent.open(). Translate by defining window.StewardConsentStrings before this script.
 * No dependencies, no cookies of its own: the choice is kept in localStorage and on the server. */
(function () {
  "use strict";
  var CONFIG = /*CONFIG*/ {};
  var me = document.currentScript;
  var API = me && me.src ? new URL(me.src).origin : "";
  var KEY = "steward.consent";
  var S = {
    title: "Your privacy choices",
    text: "We use cookies and similar tools for the purposes below. Those that are not necessary stay off until you allow them. You can change your mind at any time.",
    accept: "Accept all",
    reject: "Reject all",
    customise: "Choose",
    save: "Save my choices",
    close: "Close",
    necessary: "Necessary (always on)",
    signal: "Opt-out preference signal honoured",
    policy: "Privacy notice",
    cookies: "Cookies"
  };
  var custom = window.StewardConsentStrings || {};
  Object.keys(custom).forEach(function (k) { S[k] = custom[k]; });

  var gpc = navigator.globalPrivacyControl === true;
  var dnt = navigator.doNotTrack === "1" || window.doNotTrack === "1";

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  function store(s) {
    try { localStorage.setItem(KEY, JSON.stringify(s)); } catch (e) { /* private mode */ }
  }
  var state = load();
  state.choices = state.choices || {};

  function blockedBySignal(p) {
    return (p.gpc && gpc && CONFIG.gpc) || (p.dnt && dnt && CONFIG.dnt);
  }
  function allowed(id) {
    var p = CONFIG.purposes.filter(function (x) { return x.id === id; })[0];
    if (!p) { return false; }
    if (blockedBySignal(p)) { return false; }
    return state.revision === CONFIG.revision && state.choices[id] === true;
  }

  // Unblocked scripts run in document order, as they would have without the banner: an
  // external one is loaded (or has failed) before the next one runs, so an inline script can
  // call the library above it. One queue for the page, so a second activation waits its turn.
  var queue = [];
  var running = false;
  function pump() {
    while (queue.length) {
      var old = queue.shift();
      if (!old.parentNode) { continue; }
      var s = document.createElement("script");
      Array.prototype.forEach.call(old.attributes, function (a) {
        if (a.name !== "type" && a.name !== "data-steward-queued") { s.setAttribute(a.name, a.value); }
      });
      s.type = old.getAttribute("data-type") || "text/javascript";
      if (old.hasAttribute("src")) {
        s.async = false;
        running = true;
        s.onload = s.onerror = function () { running = false; pump(); };
        old.parentNode.replaceChild(s, old);
        return;
      }
      s.text = old.text;
      old.parentNode.replaceChild(s, old);
    }
    running = false;
  }

  function activate() {
    var nodes = document.querySelectorAll('script[type="text/plain"][data-purpose]:not([data-steward-queued])');
    Array.prototype.forEach.call(nodes, function (old) {
      if (!allowed(old.getAttribute("data-purpose"))) { return; }
      old.setAttribute("data-steward-queued", "");
      queue.push(old);
    });
    if (!running) { pump(); }
    var media = document.querySelectorAll("iframe[data-src][data-purpose], img[data-src][data-purpose]");
    Array.prototype.forEach.call(media, function (el) {
      if (allowed(el.getAttribute("data-purpose"))) {
        el.src = el.getAttribute("data-src");
        el.removeAttribute("data-src");
      }
    });
  }

  function removeCookies(p) {
    var host = location.hostname.split(".");
    (p.cookies || []).forEach(function (name) {
      var past = "=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
      document.cookie = name + past;
      for (var i = 0; i < host.length - 1; i++) {
        document.cookie = name + past + "; domain=." + host.slice(i).join(".");
      }
    });
  }

  function send(body, retried) {
    if (!window.fetch || !API) { return Promise.resolve(); }
    body.device = state.device;
    return fetch(API + "/consent/choices", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify(body),
      credentials: "omit",
      keepalive: true
    }).then(function (r) {
      return r.json().then(function (j) {
        if (r.ok && j.device) { state.device = j.device; store(state); }
        if (!r.ok && !retried && /token$/.test(j.error || "")) {
          // A device id from another installation: start afresh.
          delete state.device;
          return send(body, true);
        }
        return j;
      });
    }).catch(function () { /* offline: the local choice still applies */ });
  }

  function decide(choices) {
    var before = state.choices;
    CONFIG.purposes.forEach(function (p) {
      if (blockedBySignal(p)) { choices[p.id] = false; }
      if (before[p.id] === true && choices[p.id] !== true) { removeCookies(p); }
    });
    state.choices = choices;
    state.revision = CONFIG.revision;
    store(state);
    close();
    activate();
    send({ revision: CONFIG.revision, choices: choices, gpc: gpc, dnt: dnt });
  }

  function all(value) {
    var c = {};
    CONFIG.purposes.forEach(function (p) { c[p.id] = value; });
    return c;
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }
  function button(id, label, primary, onclick) {
    var b = el("button", { id: id, type: "button" }, label);
    b.style.cssText = "margin:4px 8px 4px 0;padding:8px 14px;border-radius:4px;cursor:pointer;font:inherit;border:1px solid #1b4d89;" +
      (primary ? "background:#1b4d89;color:#fff" : "background:#fff;color:#1b4d89");
    b.addEventListener("click", onclick);
    return b;
  }

  var root = null;
  var returnFocus = null;
  function close() {
    if (root) { root.parentNode.removeChild(root); root = null; }
    if (returnFocus && returnFocus.focus) { returnFocus.focus(); }
    returnFocus = null;
  }

  function signalNote() {
    var signalled = (gpc && CONFIG.gpc) || (dnt && CONFIG.dnt);
    if (!signalled) { return null; }
    var note = el("p", { id: "steward-signal", role: "status" }, "\u2713 " + S.signal + " (" +
      [gpc && CONFIG.gpc ? "Global Privacy Control" : "", dnt && CONFIG.dnt ? "Do Not Track" : ""].filter(Boolean).join(", ") + ")");
    note.style.cssText = "font-weight:bold;color:#14532d;margin:6px 0";
    return note;
  }

  function show(detailed) {
    close();
    returnFocus = document.activeElement;
    root = el("div", { id: "steward-banner", role: "dialog", "aria-modal": detailed ? "true" : "false",
      "aria-labelledby": "steward-title", "aria-describedby": "steward-text", lang: CONFIG.language || "en" });
    root.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:2147483647;background:#fff;color:#111;" +
      "border-top:2px solid #1b4d89;padding:16px 20px;font:15px/1.45 system-ui,sans-serif;max-height:90vh;overflow:auto;box-shadow:0 -2px 12px rgba(0,0,0,.2)";
    root.appendChild(el("h2", { id: "steward-title" }, S.title)).style.cssText = "font-size:18px;margin:0 0 6px";
    root.appendChild(el("p", { id: "steward-text" }, S.text));
    var note = signalNote();
    if (note) { root.appendChild(note); }
    if (detailed) {
      var list = el("fieldset", {});
      list.style.cssText = "border:0;padding:0;margin:8px 0";
      list.appendChild(el("legend", {}, S.title)).style.cssText = "position:absolute;left:-9999px";
      var nec = el("p", {}, S.necessary + (CONFIG.necessary.length ? " \u2014 " + S.cookies + ": " + CONFIG.necessary.join(", ") : ""));
      list.appendChild(nec);
      CONFIG.purposes.forEach(function (p) {
        var row = el("div", {});
        row.style.cssText = "margin:8px 0";
        var box = el("input", { type: "checkbox", id: "steward-purpose-" + p.id, "aria-describedby": "steward-desc-" + p.id });
        box.checked = state.revision === CONFIG.revision && state.choices[p.id] === true;
        if (blockedBySignal(p)) { box.checked = false; box.disabled = true; }
        var label = el("label", { "for": "steward-purpose-" + p.id }, " " + p.name);
        label.style.fontWeight = "bold";
        row.appendChild(box);
        row.appendChild(label);
        var desc = p.description + (p.cookies.length ? " " + S.cookies + ": " + p.cookies.join(", ") + "." : "") +
          (blockedBySignal(p) ? " " + S.signal + "." : "");
        row.appendChild(el("div", { id: "steward-desc-" + p.id }, desc)).style.cssText = "font-size:13px;color:#333;margin-left:24px";
        list.appendChild(row);
      });
      root.appendChild(list);
      root.appendChild(button("steward-save", S.save, true, function () {
        var c = {};
        CONFIG.purposes.forEach(function (p) {
          c[p.id] = document.getElementById("steward-purpose-" + p.id).checked;
        });
        decide(c);
      }));
    } else {
      root.appendChild(button("steward-accept", S.accept, true, function () { decide(all(true)); }));
      root.appendChild(button("steward-customise", S.customise, false, function () { show(true); }));
    }
    root.appendChild(button("steward-reject", S.reject, false, function () { decide(all(false)); }));
    if (CONFIG.policy_url) {
      var a = el("a", { href: CONFIG.policy_url }, S.policy);
      a.style.cssText = "margin-left:8px;color:#1b4d89";
      root.appendChild(a);
    }
    root.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && detailed && state.revision === CONFIG.revision) { close(); }
    });
    document.body.appendChild(root);
    var first = root.querySelector("button, input:not([disabled])");
    if (first) { first.focus(); }
  }

  function start() {
    document.addEventListener("click", function (e) {
      var t = e.target && e.target.closest && e.target.closest("[data-steward-preferences]");
      if (t) { e.preventDefault(); show(true); }
    });
    if (state.revision !== CONFIG.revision) {
      if (CONFIG.purposes.length) { show(false); }
      if ((gpc && CONFIG.gpc) || (dnt && CONFIG.dnt)) {
        send({ revision: CONFIG.revision, choices: {}, gpc: gpc, dnt: dnt });
      }
    } else {
      activate();
    }
  }

  window.StewardConsent = {
    open: function () { show(true); },
    allowed: allowed,
    device: function () { return state.device; },
    revision: CONFIG.revision
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
