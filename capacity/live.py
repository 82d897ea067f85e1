"""``WS /api/v1/capacity/live``: bed capacity as it changes (protocol: docs/live-feed.md).

The route is in a public router because the WebSocket authenticates itself: the token
travels in the first message, never in the URL (URLs end up in logs). The capacity
service registers :func:`start_live` / :func:`stop_live` as startup/shutdown hooks and
wires :func:`set_snapshot_provider` to its pool snapshot query.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from capacity.live_hub import LiveHub
from capacity.live_protocol import CLOSE_INTERNAL, LiveOptions, SnapshotProvider, compile_filters
from services.app import Runtime

__all__ = [
    "LiveHub",
    "LiveOptions",
    "compile_filters",
    "live_router",
    "set_snapshot_provider",
    "start_live",
    "stop_live",
]

HUB_KEY = "capacity_live_hub"
OPTIONS_KEY = "capacity_live_options"

live_router = APIRouter(tags=["capacity"])

_snapshot_provider: SnapshotProvider | None = None


def set_snapshot_provider(provider: SnapshotProvider | None) -> None:
    """Install ``provider(filters) -> list[pool snapshot dict]`` (sync; run in a thread)."""
    global _snapshot_provider
    _snapshot_provider = provider


def _snapshot(filters: dict[str, Any]) -> list[dict[str, Any]]:
    if _snapshot_provider is None:
        raise RuntimeError("no snapshot provider: call capacity.live.set_snapshot_provider")
    return _snapshot_provider(filters)


async def start_live(runtime: Runtime) -> None:
    """Startup hook: subscribe to the bus once for this process and start the hub."""
    if runtime.bus is None:
        raise RuntimeError("the live feed needs the runtime's bus")
    options = runtime.state.get(OPTIONS_KEY) or LiveOptions()
    hub = LiveHub(runtime.bus, _snapshot, options, revocations=runtime.revocations)
    await hub.start()
    runtime.state[HUB_KEY] = hub


async def stop_live(runtime: Runtime) -> None:
    """Shutdown hook: close every live connection and the bus subscription."""
    hub = runtime.state.pop(HUB_KEY, None)
    if hub is not None:
        await hub.stop()


@live_router.websocket("/api/v1/capacity/live", name="capacity_live")
async def capacity_live(websocket: WebSocket) -> None:
    """Live bed capacity: auth message, subscribe message, snapshot, then each change."""
    await websocket.accept()
    runtime: Runtime | None = getattr(websocket.app.state, "runtime", None)
    hub: LiveHub | None = runtime.state.get(HUB_KEY) if runtime is not None else None
    if hub is None:
        await websocket.send_json(
            {
                "type": "error",
                "error": "unavailable",
                "detail": "La capacidad en vivo no está disponible en este servidor.",
            }
        )
        await websocket.close(CLOSE_INTERNAL, "no disponible")
        return
    await hub.serve(websocket)
