// stratoflow UI: the glue between the server-rendered pages and the libraries (htmx,
// Chart.js). Chart data comes from <script type="application/json"> blocks the server
// fills with escaped JSON; nothing here builds HTML from strings (Chart.js draws text on
// a canvas, and tooltips are canvas text too).
"use strict";

(function () {
  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  // The state colours of app.css (--completed, --failed, ...), read once.
  function stateColor(stateType) {
    var name = "--" + String(stateType || "").toLowerCase();
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || "#8a93a3";
  }

  function titleCase(text) {
    text = String(text || "").toLowerCase();
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  var charts = {
    // Runs over time: one stacked bar per time slot, split by state type.
    runs: function (canvas, data) {
      return new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.datasets.map(function (set) {
            return {
              label: titleCase(set.state_type),
              data: set.counts,
              backgroundColor: stateColor(set.state_type),
              stack: "runs"
            };
          })
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: {
            x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }
          },
          plugins: { legend: { position: "bottom" } }
        }
      });
    },

    // Task runs as a Gantt chart: floating horizontal bars [start, end] in seconds from
    // the run's start; upstream task runs in the tooltip (and as links in the table).
    gantt: function (canvas, data) {
      var bars = data.bars;
      var box = canvas.parentElement;
      box.style.height = Math.max(120, 28 * bars.length + 60) + "px";
      return new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: bars.map(function (bar) { return bar.name; }),
          datasets: [{
            label: "Task runs",
            data: bars.map(function (bar) { return [bar.start / 1000, Math.max(bar.end, bar.start + 1) / 1000]; }),
            backgroundColor: bars.map(function (bar) { return stateColor(bar.state_type); }),
            borderSkipped: false,
            barPercentage: 0.8
          }]
        },
        options: {
          indexAxis: "y",
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: {
            x: { type: "linear", beginAtZero: true, title: { display: true, text: "seconds from the run's start" } },
            y: { ticks: { autoSkip: false } }
          },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: function (context) {
                  var bar = bars[context.dataIndex];
                  var seconds = ((bar.end - bar.start) / 1000).toFixed(2);
                  return (bar.state_name || "–") + ", " + seconds + " s";
                },
                afterLabel: function (context) {
                  var upstream = bars[context.dataIndex].upstream;
                  if (!upstream.length) return "";
                  return "after: " + upstream.map(function (u) { return u.name; }).join(", ");
                }
              }
            }
          },
          onClick: function (event, elements) {
            if (!elements.length) return;
            var row = document.getElementById("task-" + bars[elements[0].index].id);
            if (row) row.scrollIntoView({ behavior: "smooth", block: "center" });
          }
        }
      });
    }
  };

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
  // every state-changing request goes through htmx (hx-post, or a boosted <form>), and
  // this extension (hx-ext on <body>) encodes the form values itself and signs them
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

  // So every form that posts is boosted: templates write plain <form method="post">.
  document.addEventListener("htmx:beforeProcessNode", function (event) {
    var form = event.target;
    if (form.tagName === "FORM" && (form.getAttribute("method") || "").toLowerCase() === "post" &&
        !form.hasAttribute("hx-boost")) {
      form.setAttribute("hx-boost", "true");
    }
  });

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
})();
