"""Child process of the multi-process tests: hammer one shared limit.

``python redis_limit_worker.py '<json config>'``: builds a RedisLimiter,
warms it up (connection and script), announces itself on the ``ready``
list, waits for the ``start`` list, then calls ``try_acquire`` for every
token size as fast as it can and prints one JSON line:
``[[tokens, admitted, retry_after], ...]``.
"""

from __future__ import annotations

import json
import math
import random
import sys

import redis

from modelwire_redis import RedisLimiter


def main() -> None:
    cfg = json.loads(sys.argv[1])
    rng = random.Random(cfg["seed"])
    low, high = cfg["tokens"]
    sizes = [rng.randint(low, high) for _ in range(cfg["attempts"])]
    results: list[list[object]] = []
    with RedisLimiter(cfg["url"], prefix=cfg["prefix"]) as limiter, redis.Redis.from_url(
        cfg["url"]
    ) as control:
        limiter.try_acquire(f"warmup-{cfg['seed']}", rpm=None, tpm=None, tokens=0)
        control.rpush(cfg["ready"], cfg["seed"])
        if control.blpop([cfg["start"]], timeout=300) is None:
            raise SystemExit("no start signal")
        for tokens in sizes:
            got = limiter.try_acquire(cfg["key"], rpm=cfg["rpm"], tpm=cfg["tpm"], tokens=tokens)
            wait = got.retry_after if math.isfinite(got.retry_after) else -1.0
            results.append([tokens, got.admitted, wait])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
