// The phone simulator without reloads: send texts in the background and poll the
// conversation every second, so the one-time password shows up by itself.
// Without JavaScript the page still works: forms post, "Refresh" reloads.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var picker = document.querySelector("[data-autosubmit]");
  if (picker) {
    picker.addEventListener("change", function () { picker.form.submit(); });
  }

  var phone = document.querySelector("[data-phone]");
  var chat = document.querySelector("[data-chat]");
  if (!phone || !chat) { return; }

  var messagesUrl = phone.dataset.messagesUrl;
  var clockEl = document.querySelector("[data-clock]");
  var typingTemplate = document.getElementById("typing-template");
  var lastKey = null;
  var timer = null;

  function emptyRow() {
    var li = document.createElement("li");
    li.className = "empty";
    li.append("No messages yet. Text ");
    var strong = document.createElement("strong");
    strong.textContent = "RESET";
    li.append(strong, " to get a new password.");
    return li;
  }

  function row(message) {
    var li = document.createElement("li");
    li.dataset.id = message.id;
    if (message.note) {
      li.className = "note";
      li.textContent = message.body;
      return li;
    }
    li.className = "bubble-row " + (message.mine ? "mine" : "theirs");
    var bubble = document.createElement("span");
    bubble.className = "bubble";
    if (message.parts) {
      var secret = document.createElement("code");
      secret.className = "secret";
      secret.textContent = message.parts[1];
      bubble.append(message.parts[0], secret, message.parts[2]);
    } else {
      bubble.textContent = message.body;
    }
    var time = document.createElement("time");
    time.dateTime = message.at;
    time.textContent = message.time;
    li.append(bubble, time);
    return li;
  }

  function render(state) {
    if (clockEl && state.clock) { clockEl.textContent = state.clock; }
    var key = JSON.stringify([state.messages, state.pending]);
    if (key === lastKey) { return; }
    var known = {};
    chat.querySelectorAll("[data-id]").forEach(function (li) { known[li.dataset.id] = true; });
    var rows = state.messages.map(function (message) {
      var li = row(message);
      if (lastKey !== null && !known[message.id]) { li.classList.add("arrived"); }
      return li;
    });
    if (rows.length === 0) { rows.push(emptyRow()); }
    if (state.pending && typingTemplate) {
      rows.push(typingTemplate.content.firstElementChild.cloneNode(true));
    }
    chat.replaceChildren.apply(chat, rows);
    lastKey = key;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  function poll() {
    if (document.hidden) { schedule(1000); return; }
    fetch(messagesUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function () { /* the server may be restarting: try again */ })
      .finally(function () { schedule(1000); });
  }

  document.querySelectorAll("form[data-composer]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.plain) { return; }  // the fallback below: an ordinary post
      var submitter = event.submitter || null;
      var data = new FormData(form, submitter || undefined);
      var body = String(data.get("body") || "").trim();
      if (!body) { return; }
      event.preventDefault();
      var input = form.querySelector("input[name=body]");
      var buttons = form.querySelectorAll("button");
      function enable(on) { buttons.forEach(function (button) { button.disabled = !on; }); }
      enable(false);
      fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(data),
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (state) {
          render(state);
          if (input) { input.value = ""; input.focus(); }
          schedule(400);
        })
        .then(function () { enable(true); }, function () {
          enable(true);
          form.dataset.plain = "1";
          form.requestSubmit(submitter);
        });
    });
  });

  schedule(1000);
})();
