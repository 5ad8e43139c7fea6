"""Memory of one client in a fresh process; prints one JSON object.

``python bench_memory.py CLIENT LONG_URL SHORT_URL CONCURRENCY LEAK_REQUESTS``

RSS (``VmRSS``, KiB) at start, after the import, once the client is ready
(one request made), after CONCURRENCY concurrent streams from LONG_URL, and,
when LEAK_REQUESTS > 0, during that many sequential short streams from
SHORT_URL (at 10 %, 50 % and 100 %), with the count of live gc-tracked
objects beside each reading: a leak shows as steady growth in both.
"""

from __future__ import annotations

import sys


def rss_kib() -> int | None:
    """VmRSS of this process in KiB (Linux), read without importing anything."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


START = rss_kib()


def main(argv: list[str]) -> int:
    import asyncio
    import gc
    import json

    client_key, long_url, short_url, concurrency, leak = (
        argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    )
    out: dict[str, object] = {"client": client_key, "start_kib": START}
    module = {"modelwire": "modelwire", "openai": "openai", "httpx": "httpx"}[client_key]
    __import__(module)
    gc.collect()
    out["after_import_kib"] = rss_kib()

    from bench_e2e import make_client

    async def run() -> None:
        client = make_client(client_key, long_url, max(concurrency, 100))
        await client.stream()
        gc.collect()
        out["ready_kib"] = rss_kib()
        await asyncio.gather(*(client.stream() for _ in range(concurrency)))
        gc.collect()
        out["after_concurrent_kib"] = rss_kib()
        await client.aclose()
        if leak <= 0:
            return
        short = make_client(client_key, short_url)
        marks = sorted({max(1, leak // 10), max(1, leak // 2), leak})
        readings = []
        for i in range(1, leak + 1):
            await short.stream()
            if i in marks:
                gc.collect()
                readings.append({"requests": i, "rss_kib": rss_kib(), "gc_objects": len(gc.get_objects())})
        out["leak"] = readings
        await short.aclose()

    asyncio.run(run())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
