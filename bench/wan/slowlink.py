"""A TCP relay standing in for a wide-area link: every chunk is held for
DELAY_MS milliseconds in each direction, and a new connection waits one round trip
before bytes flow, as a real TCP connect would.

usage: slowlink.py LISTEN_PORT TARGET_PORT DELAY_MS
"""
import asyncio
import sys


async def carry(reader, writer, delay):
    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def take():
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def give():
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(take(), give(), return_exceptions=True)


async def main(listen, target, delay):
    async def handle(client_r, client_w):
        await asyncio.sleep(2 * delay)  # the connect's round trip
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            carry(client_r, server_w, delay),
            carry(server_r, client_w, delay),
            return_exceptions=True,
        )
        client_w.close()
        server_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
