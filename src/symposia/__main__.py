import gc

# Importing makes next to no garbage, yet with the collector on, start-up's 200,000
# allocations ran hundreds of collections (a sixth of `serve`'s import CPU). Off until
# the command is known: `serve` turns it back on once started (`tune_garbage_collector`),
# every other command at once.
gc.disable()

from symposia.cli import main  # noqa: E402

raise SystemExit(main())
