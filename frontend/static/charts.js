// Charts drawn with Chart.js (served from npm by /vendor/) from data the server rendered
// into the page; no inline script (CSP). The same figures are always in a table or list
// beside the chart: the chart is a picture of them. Two ways to hand over the data:
//   <canvas data-chart="bar" data-chart-source="id-of-a-json-script" role="img" aria-label="…">
//   <script type="application/json" id="…">{"labels": [...], "datasets": [{"label", "data"}]}</script>
// or the whole specification in the attribute:
//   <canvas data-chart='{"type": "line", "labels": [...], "series": [{"label", "values"}]}'>
const COLOURS = ["#0b4f6c", "#8a1c3b", "#1d6b34", "#7a4d00", "#4a5260", "#5b3f8c"];

function colour(set, i) {
  set.backgroundColor ??= COLOURS[i % COLOURS.length];
  set.borderColor ??= COLOURS[i % COLOURS.length];
  return set;
}

function specOf(canvas) {
  const attribute = canvas.dataset.chart || "bar";
  if (attribute.trim().startsWith("{")) {
    const spec = JSON.parse(attribute);
    return {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.series.map((s, i) => colour({ label: s.label, data: s.values }, i)),
      },
      fill: true,
    };
  }
  const source = document.getElementById(canvas.dataset.chartSource);
  if (!source) return null;
  const data = JSON.parse(source.textContent);
  data.datasets.forEach(colour);
  return { type: attribute, data, fill: false };
}

function draw(canvas) {
  let spec;
  try { spec = specOf(canvas); } catch { return; }
  if (!spec) return;
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  // eslint-disable-next-line no-new
  new window.Chart(canvas, {
    type: spec.type,
    data: spec.data,
    options: {
      locale: document.documentElement.lang || "es-MX",
      animation: reduced ? false : undefined,
      maintainAspectRatio: !spec.fill,
      plugins: { legend: { display: spec.data.datasets.length > 1 } },
      scales: spec.type === "line" || spec.type === "bar"
        ? { y: { beginAtZero: true, ticks: { precision: 0 } } } : undefined,
    },
  });
  canvas.dataset.drawn = "true";
}

function drawAll() {
  if (!window.Chart) return;
  document.querySelectorAll("canvas[data-chart]").forEach(draw);
}

if (window.Chart) drawAll();
else window.addEventListener("load", drawAll);
