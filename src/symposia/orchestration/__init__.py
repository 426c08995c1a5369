"""The turn loop and its strategies."""

from symposia.orchestration.generation import GenerationFailedError, Models
from symposia.orchestration.run_loop import RunLoop
from symposia.orchestration.turns import TurnRunner

__all__ = ["GenerationFailedError", "Models", "RunLoop", "TurnRunner"]
