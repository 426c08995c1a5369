"""What a run service tells the turn loops it owns: why one was cancelled, and whether
this process is leaving (then its runs are handed over to another, not ended)."""

from __future__ import annotations

from dataclasses import dataclass, field

# The stop reason of a run cancelled because its process is leaving: it is handed over
# (and the reason its `interrupted` event gives, which a stream rebuilt from storage
# puts back).
from symposia.domain.event_types import HANDOVER


@dataclass(slots=True)
class RunControl:
    stop_reasons: dict[str, str] = field(default_factory=dict)
    handing_over: bool = False

    def handed_over(self, run_id: str) -> bool:
        return self.stop_reasons.get(run_id) == HANDOVER


__all__ = ["HANDOVER", "RunControl"]
