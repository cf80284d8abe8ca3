/* Rose Ash cart: the little the pages need beyond htmx. Everything works without it. */
(function () {
  "use strict";

  /* Messages in the #flash region can be dismissed (they also fade away by themselves). */
  function arm(root) {
    var toasts = (root || document).querySelectorAll("#flash .toast:not([data-armed])");
    Array.prototype.forEach.call(toasts, function (toast) {
      toast.setAttribute("data-armed", "");
      var close = toast.querySelector(".toast-close");
      if (close) {
        close.hidden = false;
        close.addEventListener("click", function () { toast.remove(); });
      }
    });
  }

  function say(message, category) {
    var region = document.getElementById("flash");
    if (!region) { return; }
    var toast = document.createElement("div");
    toast.className = "toast flash-" + category;
    toast.setAttribute("data-category", category);
    if (category === "error") { toast.setAttribute("role", "alert"); }
    var text = document.createElement("p");
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss this message");
    close.textContent = "×";
    toast.appendChild(text);
    toast.appendChild(close);
    region.replaceChildren(toast);
    arm(region);
  }

  document.addEventListener("DOMContentLoaded", function () { arm(document); });
  document.addEventListener("htmx:afterSettle", function () { arm(document); });

  /* A refused change answers 4xx with the page as it really is and the reason: show it
     (htmx leaves error answers alone unless told). */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.getResponseHeader("X-Cart-Refused")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  /* Any other failure of an in-place change still says something. */
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var reason = "That didn't work. Please try again.";
    try {
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = page.querySelector(".error-message");
      if (found && found.textContent.trim()) { reason = found.textContent.trim(); }
    } catch (ignored) { /* keep the plain reason */ }
    say(reason, "error");
  });
  document.addEventListener("htmx:sendError", function () {
    say("We could not reach the shop. Check your connection and try again.", "error");
  });

  /* After an add, the quantity box goes back to 1 for the next add. */
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    var refused = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Cart-Refused");
    if (event.detail.successful && !refused && form && form.matches &&
        form.matches("form.add-form")) {
      form.reset();
    }
  });
})();
