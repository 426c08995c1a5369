"""`python -m symposia` and the installed `symposia` command (`run`)."""

import gc


def run() -> int:
    """Importing makes next to no garbage, yet with the collector on, start-up's 200,000
    allocations ran hundreds of collections (a sixth of `serve`'s import CPU). It is off
    until the command is known: `serve` turns it back on once started
    (`server.tune_garbage_collector`), every other command at once (`cli.main`)."""
    gc.disable()
    from symposia.cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
