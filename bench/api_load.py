"""The load generators of ``bench/api.py``: wrk (light, in C) when installed, else asyncio.

Both keep ``clients`` connections busy for ``seconds``, each sending its next request as
soon as the last one answered (a closed loop), every request with the token of a client
chosen at random among the first ``clients`` tokens:

* ``read``: ``GET /api/v1/runs/{id}`` of a run chosen at random among ``run_ids``;
* ``start``: ``POST /api/v1/workflows/{ref}/execute`` (a run each).

A load generator shares the machine's cores with the server it measures; wrk costs far
less of them than Python clients do (``apt-get install wrk``), so it is preferred.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Measured", "generator", "run_load"]

#: The workflow the start phases start.
REF = "bench.api"

_LUA = """\
local tokens = %(tokens)s
local runs = %(runs)s
local mode, clients = "read", #tokens
function init(args)
  mode = args[1]
  clients = tonumber(args[2])
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
request = function()
  local headers = {["Authorization"] = "Bearer " .. tokens[math.random(clients)]}
  if mode == "start" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/v1/workflows/%(ref)s/execute", headers,
                      '{"parameters": {"who": "wrk"}}')
  end
  return wrk.format("GET", "/api/v1/runs/" .. runs[math.random(#runs)], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(95), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Measured:
    """One phase's figures: requests answered, seconds, latency percentiles (ms), errors."""

    requests: int
    seconds: float
    p50: float
    p95: float
    errors: int
    #: Failures by kind: HTTP statuses and exceptions (asyncio); ``status`` (answers not
    #: 2xx or 3xx) and ``socket`` (connect, read, write errors and timeouts) with wrk.
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def generator(preferred: str) -> str:
    """``wrk`` if asked for (or ``auto``) and installed, else ``asyncio``."""
    if preferred in ("auto", "wrk") and shutil.which("wrk"):
        return "wrk"
    if preferred == "wrk":
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --load asyncio")
    return "asyncio"


def run_load(
    kind: str,
    base: str,
    mode: str,
    clients: int,
    seconds: float,
    *,
    tokens: list[str],
    run_ids: list[str],
    workdir: Path,
) -> Measured:
    """One phase with the generator ``kind`` (see :func:`generator`)."""
    if kind == "wrk":
        return _wrk(base, mode, clients, seconds, tokens=tokens, run_ids=run_ids, workdir=workdir)
    return asyncio.run(_closed_loop(base, mode, clients, seconds, tokens=tokens, run_ids=run_ids))


def _wrk(
    base: str,
    mode: str,
    clients: int,
    seconds: float,
    *,
    tokens: list[str],
    run_ids: list[str],
    workdir: Path,
) -> Measured:
    script = workdir / f"bench_api_{mode}.lua"  # written anew: the tokens differ by mode
    script.write_text(_LUA % {"tokens": _lua_list(tokens), "runs": _lua_list(run_ids), "ref": REF})
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s"]
    command += ["-s", str(script), base, "--", mode, str(clients)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    answered, micros, p50, p95, refused, failed = (int(value) for value in found.groups())
    failures = {key: n for key, n in (("status", refused), ("socket", failed)) if n}
    return Measured(
        answered - refused, micros / 1e6, p50 / 1000, p95 / 1000, refused + failed, failures
    )


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(value) for value in values) + "}"


async def _closed_loop(
    base: str, mode: str, clients: int, seconds: float, *, tokens: list[str], run_ids: list[str]
) -> Measured:
    latencies: list[float] = []
    failures: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as http:
        deadline = time.perf_counter() + seconds

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                headers = {"Authorization": f"Bearer {random.choice(tokens[:clients])}"}
                began = time.perf_counter()
                try:
                    if mode == "start":
                        response = await http.post(
                            f"/api/v1/workflows/{REF}/execute",
                            json={"parameters": {"who": "asyncio"}},
                            headers=headers,
                        )
                    else:
                        path = f"/api/v1/runs/{random.choice(run_ids)}"
                        response = await http.get(path, headers=headers)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                    failures[key] = failures.get(key, 0) + 1
                    continue
                if response.status_code >= 300:
                    key = str(response.status_code)
                    failures[key] = failures.get(key, 0) + 1
                    continue
                latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    done = sorted(latencies)
    if not done:
        return Measured(0, elapsed, 0.0, 0.0, sum(failures.values()), failures)
    p95 = done[max(0, int(len(done) * 0.95) - 1)]
    return Measured(
        len(done), elapsed, statistics.median(done), p95, sum(failures.values()), failures
    )
