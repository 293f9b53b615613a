"""The OpenAI-compatible client engine: a model served by vLLM, SGLang or llama.cpp's server.

``--model openai+http://HOST:PORT/v1`` selects it. The server runs the model; we send token
ids and read back the top-k log-probabilities it returns, so everything that needs only
those (the next-token table, the probability mode, generation, token trees, the logprobs
export) works on a model of any size, and everything that needs internals says so
(``capabilities`` is empty). Never imports Textual or Rich.
"""

from explorer.engine.remote.source import RemoteSource, is_remote_source, parse_remote_source

__all__ = ["RemoteSource", "is_remote_source", "parse_remote_source"]
