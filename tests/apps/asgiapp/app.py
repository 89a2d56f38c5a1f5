"""A Starlette app as people write one, served by uvicorn: a page that names its version
and instance, a health check, and a WebSocket that echoes what it gets, naming the
instance."""

import os
import pathlib

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

VERSION = (pathlib.Path(__file__).parent / "VERSION").read_text().strip()


async def home(request):
    return PlainTextResponse(f"asgi version {VERSION} from {os.environ['SARGE_INSTANCE']}\n")


async def health(request):
    return PlainTextResponse("ok\n")


async def echo(websocket):
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(f"{os.environ['SARGE_INSTANCE']}: {message}")


app = Starlette(routes=[Route("/", home), Route("/health", health),
                        WebSocketRoute("/ws", echo)])
