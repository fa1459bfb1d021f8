// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Copy buttons: <button data-copy-target="#id"> copies the value of that field.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy-target"));
    if (!field) return;
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
  // Without this file such a button only records the copy ("I've copied it"); with it, it
  // copies too, so it says so. htmx:load also covers content htmx swaps in.
  document.addEventListener("htmx:load", function (event) {
    event.target.querySelectorAll("[data-copy-label]").forEach(function (button) {
      button.textContent = button.getAttribute("data-copy-label");
    });
  });
})();
// Print buttons (hidden without this file; the browser's own print works anyway).
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
// The header's menu (a <details>, open and shut without this file): Escape or a click
// elsewhere closes it, as people expect of a menu; Escape puts the focus back on its button.
(function () {
  "use strict";
  var menu = document.querySelector("details.menu");
  if (!menu) return;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !menu.open) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });
  document.addEventListener("click", function (event) {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
})();
