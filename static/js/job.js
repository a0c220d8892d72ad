// Job progress page: poll the job's JSON and update the bar until the job finishes.
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root || root.dataset.finished === "true") { return; }
  var field = function (name) { return root.querySelector('[data-field="' + name + '"]'); };

  function render(job) {
    var percent = job.percent === null ? 0 : job.percent;
    var bar = field("bar");
    bar.style.width = percent + "%";
    bar.textContent = percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(percent));
    field("state").textContent = job.state;
    field("progress").textContent = job.done + (job.total ? " of " + job.total : "");
    field("message").textContent = job.message || "";
  }

  function poll() {
    fetch(root.dataset.jobUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) { return response.json(); }
        // Signed out (401), job gone or not yours (404): reload, and the server's page says why.
        // Anything else (5xx, 429) may pass: try again later.
        if (response.status === 401 || response.status === 403 || response.status === 404) {
          window.location.reload();
          return null;
        }
        throw new Error("HTTP " + response.status);
      })
      .then(function (job) {
        if (job === null) { return; }
        render(job);
        if (job.state === "succeeded" || job.state === "failed") {
          window.location.reload();  // the server renders the result or the error
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
}());
