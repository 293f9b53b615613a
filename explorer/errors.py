"""Every error the engine, the config loader and the file layer raise on purpose.

Each carries a short ``title`` and a one-sentence message meant for a person: the CLI
prints the message and exits with code 2, the app shows it as a notification. Stdlib only.
"""

from __future__ import annotations


class ExplorerError(Exception):
    """Base class: a problem we can explain in one plain sentence."""

    title = "Error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:  # the sentence, never a repr
        return self.message


class ConfigError(ExplorerError):
    title = "Configuration error"


class InputError(ExplorerError):
    """Bad user input: a prompt file, a flag value, an action that cannot apply now."""

    title = "Input error"


class ModelLoadError(ExplorerError):
    title = "Model could not be loaded"


class PersistenceError(ExplorerError):
    title = "Could not save"


class AnalysisUnavailable(ExplorerError):
    """A mode cannot compute its number for this model (said in the panel, not a crash)."""

    title = "Not available for this model"
