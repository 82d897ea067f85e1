"""Small asyncio helpers shared by the WebSocket relays (the gateway, the web UI's feed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def until_first_done(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run the coroutines together; when one finishes, cancel the others and wait for them."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
