// edgechat serve: tells textual-serve's client where the websocket is (this page's own origin,
// ws: or wss: as the page came), and restarts a session that ended.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const terminal = document.getElementById("terminal");
  terminal.dataset.sessionWebsocketUrl = `${scheme}//${window.location.host}/ws`;
  const restart = () => { window.location.href = "/"; };
  document.getElementById("restart").addEventListener("click", restart);
  document.getElementById("start").addEventListener("click", restart);
});
