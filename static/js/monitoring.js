// Device page: one chart per check (latency line, availability bars), periods 1h/24h/7d/30d.
(function () {
  "use strict";
  var section = document.getElementById("charts");
  if (!section || typeof Chart === "undefined") { return; }
  var charts = [];

  function draw(canvas, period) {
    fetch(canvas.dataset.seriesUrl + "?period=" + encodeURIComponent(period),
          { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { if (!response.ok) { throw new Error("HTTP " + response.status); } return response.json(); })
      .then(function (data) {
        var labels = data.points.map(function (p) { return new Date(p[0] * 1000).toISOString().slice(5, 16).replace("T", " "); });
        var config = {
          type: "line",
          data: { labels: labels, datasets: [
            { label: "latency (ms)", data: data.points.map(function (p) { return p[1]; }), yAxisID: "y",
              borderColor: "#0d6efd", pointRadius: 0, spanGaps: false },
            { label: "answered (share)", type: "bar", data: data.points.map(function (p) { return p[2]; }), yAxisID: "y1",
              backgroundColor: "rgba(25, 135, 84, 0.25)" }
          ] },
          options: { animation: false, responsive: true, maintainAspectRatio: false,
            scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } },
                      y1: { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false } } } }
        };
        var index = Number(canvas.dataset.chartIndex);
        if (charts[index]) { charts[index].destroy(); }
        charts[index] = new Chart(canvas, config);
      })
      .catch(function () { canvas.replaceWith(document.createTextNode("The chart could not be loaded.")); });
  }

  var canvases = Array.prototype.slice.call(section.querySelectorAll("canvas[data-series-url]"));
  canvases.forEach(function (canvas, index) { canvas.dataset.chartIndex = String(index); draw(canvas, "24h"); });
  section.querySelectorAll("button[data-period]").forEach(function (button) {
    button.addEventListener("click", function () {
      section.querySelectorAll("button[data-period]").forEach(function (b) { b.classList.remove("active"); });
      button.classList.add("active");
      canvases.forEach(function (canvas) { draw(canvas, button.dataset.period); });
    });
  });
}());
