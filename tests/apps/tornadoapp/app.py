"""A Tornado app in the shape of Tornado's own production notes: one single-threaded
process per core, each on its own port, nginx in front balancing across them. Each
answer names the process (its pid and port) that gave it."""

import asyncio
import os
import signal

import tornado.web


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write(f"{os.environ['SARGE_INSTANCE']} pid {os.getpid()} "
                   f"port {os.environ['PORT']}\n")


class HealthHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("ok\n")


async def main():
    app = tornado.web.Application([(r"/", MainHandler), (r"/health", HealthHandler)])
    server = app.listen(int(os.environ["PORT"]), address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # stop accepting, finish, exit
    await stop.wait()
    server.stop()
    await server.close_all_connections()


if __name__ == "__main__":
    asyncio.run(main())
