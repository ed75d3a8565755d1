// stratoflow UI: the little glue between the server-rendered pages and the libraries
// (htmx, Chart.js). Data comes from <script type="application/json"> blocks the server
// fills with escaped JSON; nothing here builds HTML from strings.
"use strict";

(function () {
  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  // Charts register themselves here: name -> function(canvas, data).
  var charts = {};
  window.stratoflowCharts = charts;

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var draw = charts[canvas.dataset.chart];
      var data = readJson(canvas.dataset.source);
      if (!draw || data === null) return;
      canvas.dataset.drawn = "1";
      draw(canvas, data);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
  window.stratoflowReadJson = readJson;
})();
