"""What tracing costs a `/v1` request: request_cost.py's measure (50 concurrent 64-token
streams, the app called as ASGI in-process, the fake upstream over loopback) run with
tracing off, on (every span sampled and exported over OTLP/HTTP to a receiver in another
process, so its decoding is not counted), and on with OTEL_TRACES_SAMPLER=always_off (a
request that is not sampled: the spans exist but record nothing).

Off must cost nothing: compare its Python calls per request with request_cost.py run on
the code before tracing (the call count is exact where CPU times are noisy).

    .venv/bin/python bench/tracing_cost.py [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "off": {},
    "on, sampled": {"OTEL_TRACES_SAMPLER": "always_on"},
    "on, not sampled": {"OTEL_TRACES_SAMPLER": "always_off"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.otlp_receiver"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    endpoint = receiver.stdout.readline().strip()
    try:
        for mode, extra in MODES.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            if mode != "off":
                env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **extra}
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "request_cost.py"),
                    "chat",
                    f"--requests={args.requests}",
                    f"--rounds={args.rounds}",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            for line in done.stdout.splitlines():
                print(f"tracing {mode}: {line}", flush=True)
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=30)


if __name__ == "__main__":
    main()
