"""Closed lists that the schemas, the commands and the pages share, each declared once.

The CLI builds its choices from here at import time, so this module imports nothing
beyond the standard library: `workbench --help` stays instant.
"""

from __future__ import annotations

from typing import Literal, get_args

# A dossier's state; `workbench.dossiers.TRANSITIONS` says which moves are allowed.
State = Literal["draft", "submitted", "in_review", "accepted", "rejected", "dismissed"]
STATES: tuple[State, ...] = get_args(State)

# The languages of a call's texts, of the dashboards and of the committee's reports.
LANGUAGES = ("fr", "en")
