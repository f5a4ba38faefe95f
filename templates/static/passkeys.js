// Passkeys: the only script of the pages. It shows the passkey buttons where the browser
// has WebAuthn, asks the server for options, calls navigator.credentials and posts the
// result back (urlencoded, with the page's CSRF token). Without it every page still works:
// the passkey blocks stay hidden and password sign-in is untouched.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  var ENDPOINTS = {
    login: ["/passkeys/login/options", "/passkeys/login"],
    mfa: ["/passkeys/mfa/options", "/passkeys/mfa"],
    register: ["/account/passkeys/options", "/account/passkeys/register"]
  };

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBytes(d.id) }); });
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      user: Object.assign({}, o.user, { id: toBytes(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials)
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, { challenge: toBytes(o.challenge), allowCredentials: descriptors(o.allowCredentials) });
  }

  function credentialJSON(cred) {
    var r = cred.response, response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    });
  }

  function post(url, fields) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" },
      body: new URLSearchParams(fields)
    }).then(function (res) {
      return res.json().catch(function () { return { error: null }; });
    });
  }

  function setup(box) {
    var kind = box.getAttribute("data-passkey"), urls = ENDPOINTS[kind];
    if (!urls) return;
    var button = box.querySelector("[data-passkey-start]");
    var errorBox = box.querySelector("[data-passkey-error]");
    var fields = { csrf_token: box.getAttribute("data-csrf") };
    if (box.hasAttribute("data-rid")) fields.rid = box.getAttribute("data-rid");
    var pending = Promise.resolve(), conditional = null;

    // the texts come from the page (data-msg-*), so they are translated with it
    function text(name, fallback) { return box.getAttribute("data-msg-" + name) || fallback; }

    function fail(message) {
      if (errorBox) { errorBox.textContent = message; errorBox.hidden = false; }
      if (button) button.disabled = false;
    }

    function follow(result) {
      if (result.location) { window.location.assign(result.location); return true; }
      fail(result.error || text("reload", "Something went wrong. Reload the page and try again."));
      return false;
    }

    // one ceremony at a time: a new one waits for the options of the previous one, so the
    // challenge the session keeps is the one being answered
    function ceremony(mediation) {
      var signal = null;
      if (mediation === "conditional") { conditional = new AbortController(); signal = conditional.signal; }
      else if (conditional) { conditional.abort(); conditional = null; }
      var run = pending.then(function () { return post(urls[0], fields); });
      pending = run.catch(function () {});
      return run.then(function (options) {
        if (!options.publicKey) { follow(options); return null; }
        if (kind === "register") return navigator.credentials.create({ publicKey: creationOptions(options.publicKey) });
        var request = { publicKey: requestOptions(options.publicKey) };
        if (mediation) request.mediation = mediation;
        if (signal) request.signal = signal;
        return navigator.credentials.get(request);
      }).then(function (cred) {
        if (!cred) return null;
        var body = Object.assign({ credential: credentialJSON(cred) }, fields);
        if (kind === "register") {
          var name = box.querySelector("[data-passkey-name]");
          body.passkey_name = name ? name.value : "";
        }
        return post(urls[1], body).then(follow);
      }).catch(function (err) {
        if (err && err.name === "AbortError") return;
        fail(err && err.name === "NotAllowedError"
          ? text("cancelled", "The passkey request was cancelled or timed out.")
          : text("failed", "This passkey could not be used. Try again."));
      });
    }

    box.hidden = false;
    var fallback = document.querySelector("[data-passkey-fallback]");
    if (fallback) fallback.hidden = true;
    if (button) button.addEventListener("click", function () {
      button.disabled = true;
      if (errorBox) errorBox.hidden = true;
      ceremony(null).then(function () { button.disabled = false; });
    });
    if (kind === "login" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (yes) {
        if (yes) ceremony("conditional");
      }).catch(function () {});
    }
  }

  function start() {
    var boxes = document.querySelectorAll("[data-passkey]");
    for (var i = 0; i < boxes.length; i++) setup(boxes[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
