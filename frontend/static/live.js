// The live capacity feed through the frontend's /live proxy (the session cookie
// authenticates it; the browser never holds a token). Reconnects with back-off and
// resumes from the last sequence seen, as docs/live-feed.md describes.

export function connectLive({ filters = {}, onMessage = () => {}, onStatus = () => {} } = {}) {
  let socket = null;
  let lastSequence = null;
  let delay = 1000;
  let stopped = false;
  const versions = new Map();

  function open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/live`);
    socket.addEventListener("open", () => {
      const subscribe = { type: "subscribe", filters };
      if (lastSequence !== null) subscribe.resume_from = lastSequence;
      socket.send(JSON.stringify(subscribe));
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (typeof message.sequence === "number") lastSequence = Math.max(lastSequence ?? 0, message.sequence);
      if (message.type === "ping") { socket.send(JSON.stringify({ type: "pong" })); return; }
      if (message.type === "snapshot") {
        delay = 1000;
        onStatus("live");
        for (const pool of message.pools || []) versions.set(pool.pool_id, pool.version);
      }
      if (message.type === "pool") {
        const known = versions.get(message.pool_id);
        if (known !== undefined && message.version <= known) return; // replayed or duplicate
        versions.set(message.pool_id, message.version);
      }
      onMessage(message);
    });
    socket.addEventListener("close", () => {
      onStatus("off");
      if (stopped) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  open();
  return { close() { stopped = true; socket?.close(); } };
}
