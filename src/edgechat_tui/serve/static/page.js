// edgechat serve: tells textual-serve's client where the websocket is (this page's own origin,
// ws: or wss: as the page came), gives the chat the keyboard once it shows, and restarts a
// session that ended.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const terminal = document.getElementById("terminal");
  terminal.dataset.sessionWebsocketUrl = `${scheme}//${window.location.host}/ws`;
  const restart = () => { window.location.href = "/"; };
  document.getElementById("restart").addEventListener("click", restart);
  document.getElementById("start").addEventListener("click", restart);
  // Once the chat has drawn its first frame, focus the terminal so typing goes to the message box
  // without a click first.
  const observer = new MutationObserver(() => {
    if (!document.body.classList.contains("-first-byte")) return;
    observer.disconnect();
    const input = terminal.querySelector(".xterm-helper-textarea");
    if (input) input.focus();
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ["class"] });
});
