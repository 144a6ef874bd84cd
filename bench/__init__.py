import os

# Benchmarks measure the engine and the API, not the per-key rate limits (bench.ratelimit
# measures those): with the defaults (10 triggers/s per key) most benchmarks would time 429s.
UNLIMITED = "1000000/second"
os.environ.setdefault("LOOPLLAMA_RATE_LIMIT", UNLIMITED)
os.environ.setdefault("LOOPLLAMA_RUN_RATE_LIMIT", UNLIMITED)
