// Referral notices on every open page, from the live feed (the "referrals" filter class):
// a count in the menu, a message where the eye is, a sound and an alert for urgent ones,
// and the page's own referral parts redrawn in place. Nothing polls; a notice carries no
// identity, only the step, the referral and how many people.
import { connectLive } from "/static/live.js";

const KEY = "canaliza.unread";
const region = document.getElementById("notify-region");
const badge = document.querySelector("[data-notify-count]");
const labels = JSON.parse(document.getElementById("notify-labels")?.textContent || "{}");

function unread() { return Number(sessionStorage.getItem(KEY) || "0"); }

function showCount(n) {
  if (!badge) return;
  badge.textContent = n ? String(n) : "";
  badge.hidden = !n;
  badge.dataset.count = String(n);
}

function cue() {
  try {
    const ctx = new AudioContext();
    const tone = ctx.createOscillator();
    tone.frequency.value = 880;
    tone.connect(ctx.destination);
    tone.start();
    tone.stop(ctx.currentTime + 0.3);
  } catch { /* no sound without a user gesture: the visual cue remains */ }
}

// Redraw the parts of this page a notice concerns, from the page as the server draws it now.
async function redraw(selectors) {
  const present = selectors.filter((s) => document.querySelector(s));
  if (!present.length) return;
  const resp = await fetch(location.pathname + location.search, { credentials: "same-origin" });
  if (!resp.ok) return;
  const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
  for (const selector of present) {
    const now = fresh.querySelector(selector);
    const old = document.querySelector(selector);
    if (now && old) {
      old.replaceWith(document.importNode(now, true));
      document.querySelector(selector)?.classList.add("updated");
    }
  }
  document.dispatchEvent(new CustomEvent("canaliza:redrawn"));
}

function announce(message) {
  const text = labels[`${message.event}:${message.side}`];
  if (!text || !region) return false;
  const urgent = message.urgency === "urgent" && message.event === "send";
  const item = document.createElement("p");
  item.className = urgent ? "toast urgent" : "toast";
  item.setAttribute("role", urgent ? "alert" : "status");
  item.dataset.notice = message.event;
  const link = document.createElement("a");
  link.href = message.side === "receiver"
    ? `/refugio/canalizaciones/${encodeURIComponent(message.referral_id)}`
    : `/canalizaciones/${encodeURIComponent(message.referral_id)}`;
  link.textContent = urgent ? `${labels.urgent} ${text}` : text;
  item.append(link);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "small";
  close.textContent = labels.close || "×";
  close.addEventListener("click", () => item.remove());
  item.append(close);
  region.prepend(item);
  if (urgent) {
    cue();
    if (!document.title.startsWith("(!)")) document.title = `(!) ${document.title}`;
  }
  return true;
}

if (location.pathname === "/avisos") sessionStorage.setItem(KEY, "0");
showCount(unread());

if (region) {
  connectLive({
    filters: { referrals: true },
    onStatus: (state) => { region.dataset.state = state; },
    onMessage(message) {
      if (message.type !== "referral") return;
      if (announce(message)) {
        sessionStorage.setItem(KEY, String(unread() + 1));
        showCount(unread());
      }
      redraw([
        `[data-live-referral="${CSS.escape(message.referral_id)}"]`,
        "[data-live-inbox]",
        "[data-live-list]",
      ]);
    },
  });
}
