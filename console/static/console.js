// Blink SMS console: passkeys (WebAuthn). Everything else works without this file.
"use strict";
(function () {
  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || "the request failed"); }
        return data;
      });
    });
  }
  function serialise(credential) {
    var response = credential.response, out = {
      id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(response.clientDataJSON) }
    };
    if (response.attestationObject) { out.response.attestationObject = toB64url(response.attestationObject); }
    if (response.authenticatorData) {
      out.response.authenticatorData = toB64url(response.authenticatorData);
      out.response.signature = toB64url(response.signature);
      if (response.userHandle) { out.response.userHandle = toB64url(response.userHandle); }
    }
    return out;
  }
  function say(button, message) {
    var note = document.createElement("p");
    note.className = "flash error"; note.setAttribute("role", "alert"); note.textContent = message;
    button.parentNode.insertBefore(note, button.nextSibling);
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) { return; }
    var register = document.getElementById("passkey-register");
    if (register) {
      register.classList.remove("hidden");
      register.addEventListener("click", function () {
        var d = register.dataset, name = window.prompt("A name for this passkey", "My passkey");
        if (name === null) { return; }
        post(d.options, d.csrf).then(function (o) {
          o.challenge = toBytes(o.challenge); o.user.id = toBytes(o.user.id);
          (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
          return navigator.credentials.create({ publicKey: o });
        }).then(function (credential) {
          return post(d.verify, d.csrf, { name: name, credential: serialise(credential) });
        }).then(function () { window.location.reload(); })
          .catch(function (err) { say(register, err.message); });
      });
    }
    var signIn = document.getElementById("passkey-sign-in");
    if (signIn) {
      signIn.classList.remove("hidden");
      signIn.addEventListener("click", function () {
        var d = signIn.dataset;
        post(d.options, d.csrf).then(function (o) {
          o.challenge = toBytes(o.challenge);
          (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
          return navigator.credentials.get({ publicKey: o });
        }).then(function (credential) {
          return post(d.verify + window.location.search, d.csrf, { credential: serialise(credential) });
        }).then(function (data) { window.location.assign(data.redirect); })
          .catch(function (err) { say(signIn, err.message); });
      });
    }
  });
})();
