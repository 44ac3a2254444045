// Progressive enhancement for the code page; everything works without it.
// Served from /static (the pages' Content-Security-Policy allows no
// inline script).
(function () {
  "use strict";
  // Submit the code form once six digits are in (typed, pasted or filled
  // in by the browser from the email).
  var form = document.querySelector("form[data-autosubmit]");
  var input = form && form.querySelector("input[name=code]");
  if (input) {
    var sent = false;
    input.addEventListener("input", function () {
      var digits = input.value.replace(/\D/g, "").slice(0, 6);
      if (digits !== input.value) input.value = digits;
      if (digits.length === 6 && !sent) {
        sent = true;
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      }
    });
    form.addEventListener("submit", function () { sent = true; });
  }
  // Count the resend cool-down down and enable the button when it ends.
  var wait = document.getElementById("resend-wait");
  var button = document.getElementById("resend");
  if (wait && button) {
    var left = parseInt(wait.getAttribute("data-wait"), 10) || 0;
    // The ticking text is not announced; the end of the wait is, once.
    var live = document.createElement("span");
    live.className = "visually-hidden";
    live.setAttribute("role", "status");
    wait.parentNode.appendChild(live);
    var tick = function () {
      if (left <= 0) {
        wait.textContent = wait.getAttribute("data-ready-text");
        live.textContent = wait.textContent;
        button.disabled = false;
        button.removeAttribute("aria-describedby");
        return;
      }
      wait.textContent = wait.getAttribute("data-wait-text").replace("{0}", String(left));
      left--;
      setTimeout(tick, 1000);
    };
    tick();
  }
})();
