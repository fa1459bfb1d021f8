// No HTMX action fails silently: an error answer that htmx does not swap, or a request that
// never reached the server, is shown in a toast. Our error answers carry their message in an
// "app:error" event (HX-Trigger, app/errors.py); anything else (a proxy's 502) gets a message
// from its status. Forms swap their own 422/429/503 answers in place and never come here.
(function () {
  "use strict";
  var UNREACHABLE = "Could not reach the server. Check your connection and try again.";
  var MAX_TOASTS = 3;
  var region = null;

  function toastRegion() {
    if (!region) {
      region = document.createElement("div");
      region.className = "toasts";
      region.setAttribute("role", "alert");
      region.setAttribute("aria-live", "assertive");
      document.body.appendChild(region);
    }
    return region;
  }

  function showToast(message) {
    var toasts = toastRegion();
    Array.prototype.forEach.call(toasts.children, function (toast) {
      if (toast.firstChild.textContent === message) toast.remove();  // once, newest last
    });
    var toast = document.createElement("div");
    toast.className = "toast";
    var text = document.createElement("p");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss this message");
    close.textContent = "×";
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(text);
    toast.appendChild(close);
    toasts.appendChild(toast);
    while (toasts.children.length > MAX_TOASTS) toasts.firstChild.remove();
  }

  function messageForStatus(status) {
    if (status >= 500) {
      return "The server could not do this (error " + status + "). Please try again in a moment.";
    }
    return "This could not be done (error " + status + "). Reload the page and try again.";
  }

  document.addEventListener("app:error", function (event) {
    showToast(event.detail.message);
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if ((xhr.getResponseHeader("HX-Trigger") || "").indexOf('"app:error"') !== -1) return;
    showToast(messageForStatus(xhr.status));
  });
  document.addEventListener("htmx:sendError", function () { showToast(UNREACHABLE); });
  document.addEventListener("htmx:timeout", function () { showToast(UNREACHABLE); });
})();
