// Charts from data the server rendered into the page (no inline script: CSP).
//   <canvas data-chart="bar" data-chart-source="id-of-a-json-script" role="img" aria-label="…">
//   <script type="application/json" id="…">{"labels": [...], "datasets": [{"label", "data"}]}</script>
// The numbers are always also in a table or list on the page: the chart is a picture of them.
const PALETTE = ["#0b4f6c", "#8a1c3b", "#1d6b34", "#7a4d00", "#4a5260", "#5b3f8c"];

function draw(canvas) {
  const source = document.getElementById(canvas.dataset.chartSource);
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  data.datasets.forEach((set, i) => {
    set.backgroundColor ??= PALETTE[i % PALETTE.length];
    set.borderColor ??= PALETTE[i % PALETTE.length];
  });
  const locale = document.documentElement.lang || "es-MX";
  // eslint-disable-next-line no-new
  new window.Chart(canvas, {
    type: canvas.dataset.chart || "bar",
    data,
    options: {
      locale,
      animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : undefined,
      plugins: { legend: { display: data.datasets.length > 1 } },
      scales: canvas.dataset.chart === "line" || canvas.dataset.chart === "bar"
        ? { y: { beginAtZero: true, ticks: { precision: 0 } } } : undefined,
    },
  });
}

document.querySelectorAll("canvas[data-chart]").forEach(draw);
