"""HTTP to an OpenAI-compatible server: time-outs, idempotent retries, one-sentence errors.

Every request we send is a pure function of its body (score these token ids, tokenize this
text), so retrying after a dropped connection is safe. Errors become ``RemoteError`` with a
sentence that names what to fix; the CLI prints it and exits 2, the app shows it as a
notification. Never imports Textual or Rich.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx2 as httpx

from explorer.engine.remote.source import RemoteSource
from explorer.errors import ExplorerError


class RemoteError(ExplorerError):
    """The server could not be reached or refused a request."""

    title = "Server error"


@dataclass
class SentRequest:
    """One request as sent (kept so tests can check that a step sends only what it must)."""

    path: str
    body: dict | None = field(default=None)


class RemoteClient:
    """A small JSON client around ``httpx2.Client``.

    Args:
        source: the parsed server address.
        timeout: seconds one request may take before it is abandoned (and retried).
        retries: extra attempts after a connection error, a time-out or a 502/503/504.
    """

    def __init__(self, source: RemoteSource, *, timeout: float = 60.0, retries: int = 2) -> None:
        self.source = source
        self.timeout = timeout
        self.retries = retries
        self.sent: list[SentRequest] = []
        self._sent_lock = threading.Lock()
        headers = {}
        key = source.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # One connection pool shared by the tree's parallel requests.
        self._http = httpx.Client(headers=headers, timeout=timeout,
                                  limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))

    def close(self) -> None:
        self._http.close()

    def get(self, url: str) -> dict:
        return self._call("GET", url, None)

    def post(self, url: str, body: dict) -> dict:
        return self._call("POST", url, body)

    def _call(self, method: str, url: str, body: dict | None) -> dict:
        with self._sent_lock:
            self.sent.append(SentRequest(url, body))
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, url, json=body)
            except httpx.TimeoutException as exc:
                last = exc
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code in (502, 503, 504) and attempt < self.retries:
                    last = None
                else:
                    return self._decode(response, url)
            if attempt < self.retries:
                time.sleep(0.2 * (2 ** attempt))  # back off: a restarting server needs a moment
        if isinstance(last, httpx.TimeoutException):
            raise RemoteError(f"The server at {self.source.base_url} did not answer within {self.timeout:g} s; "
                              "check that it is not overloaded, or raise [model] timeout.")
        raise RemoteError(f"Cannot reach the server at {self.source.base_url}; check that it is running "
                          "and that the address and port are right.")

    def _decode(self, response, url: str) -> dict:
        status = response.status_code
        if status in (401, 403):
            raise RemoteError(f"The server at {self.source.base_url} refused the API key (HTTP {status}); "
                              f"set the right key in the {self.source.api_key_env} environment variable.")
        if status == 404:
            raise RemoteError(f"The server at {self.source.base_url} has no endpoint {_path(url)} "
                              "(HTTP 404); check that it is an OpenAI-compatible server (vLLM, SGLang, llama.cpp).")
        if status >= 400:
            raise RemoteError(f"The server at {self.source.base_url} rejected a request to {_path(url)} "
                              f"(HTTP {status}: {_server_message(response)}).")
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"The server at {self.source.base_url} answered {_path(url)} with something "
                              "that is not JSON; check the address.") from None


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1]


def _server_message(response) -> str:
    """The server's own error text, shortened to one line."""
    try:
        data = response.json()
        err = data.get("error", data)
        text = err.get("message", "") if isinstance(err, dict) else str(err)
    except ValueError:
        text = response.text
    text = " ".join(str(text).split())
    return text[:200] or "no message"
