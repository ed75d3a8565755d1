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

  // In AWS, CloudFront signs each request to the Lambda Function URL (origin access
  // control), and for a POST or PUT Lambda wants the body's SHA-256 in the
  // x-amz-content-sha256 header, which only the browser can compute (docs/ui.md). So
  // every state-changing request goes through htmx (hx-post, or hx-boost on a <form>),
  // and this extension (hx-ext on <body>) encodes the form values itself and signs them
  // with js-sha256 (synchronous: htmx sends the body right after this call).
  if (window.htmx && window.sha256) {
    window.htmx.defineExtension("signed-body", {
      encodeParameters: function (xhr, parameters, elt) {
        if (elt.closest("[hx-encoding]")) return null; // multipart: not through CloudFront
        var body = new URLSearchParams();
        var files = false;
        parameters.forEach(function (value, key) {
          if (typeof value === "string") body.append(key, value); else files = true;
        });
        if (files) return null;
        var text = body.toString();
        xhr.setRequestHeader("x-amz-content-sha256", window.sha256(text));
        return text;
      }
    });
  }

  // A boosted form behaves as a plain one: the server answers its redirect with
  // HX-Redirect (a full navigation), and an error page replaces the page, as it would
  // without htmx (htmx leaves 4xx/5xx answers unswapped by default).
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.boosted && event.detail.xhr.status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawCharts(event.target); });
  window.stratoflowReadJson = readJson;
})();
