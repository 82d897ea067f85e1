// The coordinator's pools keep themselves current: each capacity change seen on the live
// feed updates the counts, the version the +/- form sends, and which buttons make sense.
import { connectLive } from "/static/live.js";

const status = document.getElementById("live-status");

function setStatus(state) {
  if (!status) return;
  status.dataset.state = state;
  status.textContent = state === "live" ? status.dataset.labelLive : status.dataset.labelOff;
}

function update(pool) {
  const item = document.querySelector(`li.pool[data-pool-id="${CSS.escape(pool.pool_id)}"]`);
  if (!item) return;
  const version = item.querySelector('input[name="version"]');
  if (version && Number(version.value) >= pool.version) return;
  if (version) version.value = String(pool.version);
  for (const key of ["occupied", "available", "held", "total"]) {
    const el = item.querySelector(`[data-${key}]`);
    if (el) el.textContent = new Intl.NumberFormat(document.documentElement.lang).format(pool[key]);
  }
  const admit = item.querySelector('button[value="admit"]');
  const discharge = item.querySelector('button[value="discharge"]');
  if (admit) admit.disabled = pool.available < 1;
  if (discharge) discharge.disabled = pool.occupied < 1;
  item.classList.remove("updated");
  void item.offsetWidth; // restart the highlight
  item.classList.add("updated");
}

if (document.querySelector("li.pool")) {
  connectLive({
    filters: {},
    onStatus: setStatus,
    onMessage: (message) => {
      if (message.type === "pool") update(message);
      if (message.type === "snapshot") for (const pool of message.pools || []) update(pool);
    },
  });
}
