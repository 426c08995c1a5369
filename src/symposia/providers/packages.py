"""Whether an optional package is installed, asked once per process.

`importlib.util.find_spec` walks sys.path on disk; providers are asked whether they are
configured on every model check and listing, so the answer is cached.
"""

from __future__ import annotations

import importlib.util
from functools import cache


@cache
def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
