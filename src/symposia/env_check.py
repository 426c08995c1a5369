"""Start-up warnings for variables that look meant for us but are not read: a
`SYMPOSIA_...` name (our settings have no prefix) or a near miss of a setting's name
(`DATABASE_URI`), in the environment or in `.env`. A misspelt setting would otherwise be
ignored without a word, and its default used. Also: HOST/PORT beside API_HOST/API_PORT.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

from symposia.settings import Settings

PREFIX = "SYMPOSIA_"
# Read by others than the server: the CLI client (SYMPOSIA_API_KEY) and the test suite.
OTHER_READERS = frozenset({"SYMPOSIA_API_KEY", "SYMPOSIA_UPDATE_GOLDEN"})
OTHER_PREFIXES = ("SYMPOSIA_TEST_", "SYMPOSIA_FAULTS_")
# How alike a name must be to a setting's to be taken for a misspelling of it (difflib's
# ratio): DATABASE_URI ~ DATABASE_URL is 0.92; HOSTNAME ~ HOST, 0.67.
CLOSE_MATCH = 0.85


def setting_names() -> frozenset[str]:
    """Every variable the settings read: each field's name and its aliases, upper case."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(choice).upper() for choice in choices)
    return frozenset(names)


def unknown_variable_warnings(variables: Iterable[str]) -> list[str]:
    """One warning per variable that looks like ours and is not read, naming the closest."""
    known = setting_names()
    warnings = []
    for raw in sorted(set(variables)):
        name = raw.upper()
        if name in known or name in OTHER_READERS or name.startswith(OTHER_PREFIXES):
            continue
        if name.startswith(PREFIX):
            bare = name.removeprefix(PREFIX)
            match = difflib.get_close_matches(bare, known, n=1, cutoff=CLOSE_MATCH)
            hint = f"; did you mean {match[0]}?" if match else ""
            warnings.append(
                f"{raw} is not a setting and is ignored: settings have no SYMPOSIA_ prefix{hint}"
            )
            continue
        match = difflib.get_close_matches(name, known, n=1, cutoff=CLOSE_MATCH)
        if match:
            warnings.append(f"{raw} is not a setting and is ignored; did you mean {match[0]}?")
    return warnings


def shadowed_warnings(variables: Mapping[str, str | None]) -> list[str]:
    """HOST/PORT win over API_HOST/API_PORT: say so when both are given and differ."""
    upper = {key.upper(): value for key, value in variables.items()}
    warnings = []
    for ours, seeds in (("HOST", "API_HOST"), ("PORT", "API_PORT")):
        if ours in upper and seeds in upper and upper[ours] != upper[seeds]:
            warnings.append(f"{seeds} is ignored: {ours} is set too, and wins")
    return warnings


def startup_warnings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> list[str]:
    """The warnings for this process's environment and its `.env` (as the settings read it)."""
    variables: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        variables.update(dotenv_values(env_file))
    variables.update(os.environ if environ is None else environ)
    return unknown_variable_warnings(variables) + shadowed_warnings(variables)
