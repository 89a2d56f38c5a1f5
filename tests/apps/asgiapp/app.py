"""A Starlette app as people write one, served by uvicorn: a page that names its version
and instance, and a health check."""

import os
import pathlib

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

VERSION = (pathlib.Path(__file__).parent / "VERSION").read_text().strip()


async def home(request):
    return PlainTextResponse(f"asgi version {VERSION} from {os.environ['SARGE_INSTANCE']}\n")


async def health(request):
    return PlainTextResponse("ok\n")


app = Starlette(routes=[Route("/", home), Route("/health", health)])
