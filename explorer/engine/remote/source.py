"""Parse the remote model source ``openai+http(s)://HOST:PORT/v1``. Stdlib only.

The API key never appears here as a value: we keep the *name* of the environment variable
and read it when a request is made, so it is never printed, logged or saved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from explorer.errors import InputError

PREFIX = "openai+"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def is_remote_source(name: str) -> bool:
    return name.strip().lower().startswith(PREFIX)


@dataclass(frozen=True)
class RemoteSource:
    base_url: str
    """The OpenAI API root, e.g. ``http://127.0.0.1:8080/v1``."""
    root_url: str
    """The server root (``base_url`` without ``/v1``): llama.cpp's and vLLM's own endpoints live there."""
    served_model: str | None
    """The model name the server knows (``--served-model``); None = the one the server lists."""
    api_key_env: str = DEFAULT_KEY_ENV
    """Name of the environment variable holding the API key (its value is never stored)."""

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    @property
    def display(self) -> str:
        """What the status bar shows: the served model at the server's address (no secrets)."""
        where = self.base_url
        return f"{self.served_model} @ {where}" if self.served_model else where


def parse_remote_source(name: str, served_model: str | None = None,
                        api_key_env: str | None = None) -> RemoteSource:
    """``openai+http://HOST:PORT/v1`` -> RemoteSource; a malformed address is an InputError."""
    text = name.strip()
    if not is_remote_source(text):
        raise InputError(f'"{name}" is not a server address; write it as openai+http://HOST:PORT/v1.')
    url = text[len(PREFIX):]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f'"{name}" is not a server address; write it as openai+http://HOST:PORT/v1 '
                         "(or openai+https://...).")
    if parts.username or parts.password:
        raise InputError("Do not put credentials in the server address; set the API key in the "
                         f"{api_key_env or DEFAULT_KEY_ENV} environment variable.")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InputError(f'The port in "{name}" is not a number.') from None
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    root = base[: -len("/v1")]
    return RemoteSource(base_url=base, root_url=root, served_model=served_model or None,
                        api_key_env=api_key_env or DEFAULT_KEY_ENV)
