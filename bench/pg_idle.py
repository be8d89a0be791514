#!/usr/bin/env python3
"""Holds N PostgreSQL client connections open and idle, for the pool bench.

    python3 bench/pg_idle.py --host H --port P --count N --hold-secs S \
        [--sni NAME] [--ca FILE] [--cert FILE --key FILE]

Each connection: TCP to host:port, SSLRequest, TLS (SNI NAME, verified
against --ca when given, with the client certificate when given), a
StartupMessage for user app / database app, then reads until the first
ReadyForQuery. Prints {"phase": "holding", "open": n, "failed": m} once
every connection is up or has failed, holds them for S seconds, then
closes them and prints {"phase": "closed"}. Bounded: N connections, a 60 s
deadline to open them, S seconds of holding. Standard library only.
"""

import argparse
import asyncio
import json
import resource
import ssl
import struct
import sys


def startup():
    params = b"user\0app\0database\0app\0application_name\0pg_idle\0\0"
    body = struct.pack("!I", 196608) + params
    return struct.pack("!I", len(body) + 4) + body


async def one(args, ctx):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    writer.write(struct.pack("!II", 8, 80877103))
    await writer.drain()
    if (await reader.readexactly(1)) != b"S":
        raise RuntimeError("TLS refused")
    await writer.start_tls(ctx, server_hostname=args.sni)
    writer.write(startup())
    await writer.drain()
    while True:
        head = await reader.readexactly(5)
        tag, length = head[:1], struct.unpack("!I", head[1:])[0]
        body = await reader.readexactly(length - 4)
        if tag == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        if tag == b"Z":
            return writer


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="localhost")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--hold-secs", type=float, default=10)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.count + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else ssl._create_unverified_context()
    if not args.ca:
        ctx.check_hostname = False
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    # At most 100 handshakes at once, like a fleet of application
    # servers starting.
    gate = asyncio.Semaphore(100)

    async def guarded():
        async with gate:
            return await one(args, ctx)

    tasks = [asyncio.create_task(guarded()) for _ in range(args.count)]
    done, pending = await asyncio.wait(tasks, timeout=60)
    for t in pending:
        t.cancel()
    writers = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    errors = [str(t.exception()) for t in done if not t.cancelled() and t.exception() is not None]
    print(json.dumps({"phase": "holding", "open": len(writers), "failed": args.count - len(writers),
                      "first_error": errors[0] if errors else None}), flush=True)
    await asyncio.sleep(args.hold_secs)
    for w in writers:
        w.write(b"X\0\0\0\4")
        w.close()
    print(json.dumps({"phase": "closed"}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
