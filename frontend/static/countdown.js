// Countdown to a referral's answer deadline, refreshed every 30 s (the server's text is the
// fallback without JavaScript). Labels come from data attributes, in the page's language.
function format(seconds) {
  const minutes = Math.max(0, Math.floor(seconds / 60));
  const h = Math.floor(minutes / 60);
  const m = String(minutes % 60).padStart(2, "0");
  return h ? `${h} h ${m} min` : `${minutes} min`;
}

function tick() {
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const due = Date.parse(el.dataset.countdown);
    if (Number.isNaN(due)) continue;
    const left = (due - Date.now()) / 1000;
    el.classList.toggle("overdue", left < 0);
    el.classList.toggle("soon", left >= 0 && left < 1800);
    el.textContent = left < 0
      ? el.dataset.labelOverdue
      : el.dataset.labelLeft.replace("%(time)s", format(left));
  }
}

tick();
setInterval(tick, 30000);
