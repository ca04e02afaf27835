#!/usr/bin/env python3
"""Slow and idle HTTP/1.1 clients for test/bench/run_slow_clients.sh (a measurement tool).

  slow_clients.py --port P --connections N --seconds S --mode idle|slowloris

idle:      each connection sends one GET, reads its response, then stays open and silent.
slowloris: each connection sends a request line, then one more header byte every second,
           never finishing the headers.
After S seconds it prints one line: how many connections it opened, how many the server
closed, and the statuses of the responses it got (e.g. "opened=1000 closed=1000 200=1000").
Only 127.0.0.1.
"""
import argparse
import asyncio
import collections
import re

STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})", re.M)


async def client(port, mode, stop, stats):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        stats["connect_failed"] += 1
        return
    stats["opened"] += 1
    received = bytearray()

    async def read_all():
        while True:
            data = await reader.read(65536)
            if not data:
                stats["closed"] += 1
                return
            received.extend(data)

    reading = asyncio.ensure_future(read_all())
    try:
        if mode == "idle":
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        else:
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
        await writer.drain()
        while not stop.is_set() and not reading.done():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            if mode == "slowloris" and not reading.done():
                writer.write(b"a")
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    for status in STATUS.findall(bytes(received)):
        stats[status.decode()] += 1
    reading.cancel()
    writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mode", choices=["idle", "slowloris"], default="idle")
    args = parser.parse_args()
    stats = collections.Counter()
    stop = asyncio.Event()
    tasks = []
    for _ in range(args.connections):
        tasks.append(asyncio.ensure_future(client(args.port, args.mode, stop, stats)))
        await asyncio.sleep(0)
    await asyncio.sleep(args.seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(" ".join(f"{k}={v}" for k, v in sorted(stats.items())), flush=True)


asyncio.run(main())
