// "Nueva canalización": eligible places refresh themselves while the prosecutor decides.
// Each capacity change seen on the live feed re-runs the search (debounced), so what is
// shown is always what the platform would answer now for the whole group.
import { connectLive } from "/static/live.js";

const form = document.getElementById("search-form");
const status = document.getElementById("live-status");
let timer = null;

function setStatus(state) {
  if (!status) return;
  status.dataset.state = state;
  status.textContent = state === "live" ? status.dataset.labelLive : status.dataset.labelOff;
}

function refresh() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    // Only refresh results that were already asked for (not an empty form).
    if (document.querySelector("#results [data-results], #results .alert.warning") && window.htmx) {
      window.htmx.trigger(form, "live-refresh");
    }
  }, 400);
}

function markUpdated(poolId) {
  const item = document.querySelector(`[data-pool-id="${CSS.escape(poolId)}"]`);
  if (item) {
    item.closest(".result")?.classList.add("updated");
  }
}

if (form) {
  // Everything she may see: the state and the people may change while the page is open.
  connectLive({
    filters: {},
    onStatus: setStatus,
    onMessage(message) {
      if (message.type === "pool" || message.type === "pool_removed" || message.type === "facility") {
        if (message.pool_id) markUpdated(message.pool_id);
        refresh();
      }
    },
  });
}
