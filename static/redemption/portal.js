// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  function setupCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(target.textContent).then(function () {
          var label = button.textContent;
          button.textContent = "Copied";
          window.setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });
  }

  function formatNumber(n) {
    return Number(n).toLocaleString("en-US");
  }

  function setupJobPolling() {
    var job = document.getElementById("job");
    if (!job || job.getAttribute("data-finished") === "true") return;
    var url = job.getAttribute("data-status-url");
    function field(name) { return job.querySelector('[data-job-field="' + name + '"]'); }
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (data) {
          field("progress").value = data.percent;
          field("percent").textContent = data.percent;
          field("done").textContent = formatNumber(data.done);
          field("total").textContent = formatNumber(data.total);
          field("errors").textContent = formatNumber(data.errorCount);
          var status = field("status");
          status.textContent = data.status;
          status.className = "badge job-" + data.status;
          if (data.finished) {
            window.location.reload();  // show errors, summary and the download link
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 700);
  }

  // A file over the server's limit is refused before it is sent (the server refuses it too).
  function setupUploadLimits() {
    document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
      var max = Number(input.getAttribute("data-max-bytes"));
      if (!input.form || !max) return;
      input.form.addEventListener("submit", function (event) {
        var field = input.closest(".field") || input.parentNode;
        var shown = field.querySelector("[data-upload-limit]");
        if (shown) shown.remove();
        var file = input.files && input.files[0];
        if (!file || file.size <= max) return;
        event.preventDefault();
        var message = document.createElement("p");
        message.className = "field-error";
        message.setAttribute("role", "alert");
        message.setAttribute("data-upload-limit", "");
        message.textContent = input.getAttribute("data-too-large");
        field.appendChild(message);
        field.classList.add("has-error");
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopyButtons();
    setupJobPolling();
    setupUploadLimits();
  });
})();
