// Statistics charts: each <canvas data-chart="{type, labels, series}"> is drawn with
// Chart.js (served from npm by /vendor/). The same figures are in a table beside it.
const COLOURS = ["#0b4f6c", "#8a1c3b", "#1d6b34", "#7a4d00", "#4a5260"];

function draw() {
  if (!window.Chart) return;
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    let spec;
    try { spec = JSON.parse(canvas.dataset.chart); } catch { continue; }
    const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    new window.Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.series.map((s, i) => ({
          label: s.label,
          data: s.values,
          backgroundColor: COLOURS[i % COLOURS.length],
          borderColor: COLOURS[i % COLOURS.length],
        })),
      },
      options: {
        animation: reduced ? false : undefined,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
    canvas.dataset.drawn = "true";
  }
}

if (window.Chart) draw();
else window.addEventListener("load", draw);
