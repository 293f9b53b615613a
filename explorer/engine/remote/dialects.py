"""How to ask each kind of server for the top-k log-probabilities of a token-id prompt.

Both dialects answer the same two questions, always with the prompt sent as token ids
(never as text, so ids stay exact):

* ``distribution(ids, k, forced)``: the top-k of the token after ``ids`` and, when
  ``forced`` is given, that token's own log-probability (even outside the top-k);
* ``prompt_distributions(ids, first, k)``: the same for every prefix ``ids[:i]``,
  ``first <= i < len(ids)``, with ``forced = ids[i]`` (the probability mode).

llama.cpp (``/completion``, native): ids in, ids out, no cap on ``n_probs``; probabilities
are the softmax of the raw logits (``post_sampling_probs`` off), and the sampled token's
own probability is reported from the full row, so a ``logit_bias`` that forces the prompt's
next token gives its exact log-probability. Its ``/v1/completions`` ignores ``echo``, so
prompt scores take one request per prefix, which its prompt cache makes one-token cheap.
Omitted sampling fields take llama.cpp's defaults (temperature 0.8, top-k 40, ...), so every
request sends them all.

OpenAI-compatible (vLLM, SGLang: ``/v1/completions``): ``logprobs`` is capped by the server
(vLLM: 20 unless ``--max-logprobs``); ``return_tokens_as_token_ids`` keys the top-k by
``token_id:N`` so two tokens with the same text do not collide; ``echo`` returns the prompt
tokens' log-probabilities in one request. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.engine.remote.client import RemoteClient, RemoteError

# A bias this large makes the forced token the greedy choice whatever its logit; it does not
# change the reported probabilities, which llama.cpp takes from the raw logits.
_FORCE_BIAS = 1.0e4


@dataclass(frozen=True)
class Distribution:
    """The server's answer for one position: the top-k of the next token, most likely first."""

    ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    """Natural-log probabilities, as the server reports them (raw: before sampling settings)."""
    chosen_id: int | None = None
    chosen_logprob: float | None = None
    """log p of ``chosen_id`` (the forced token), exact even when it is outside the top-k."""

    def logprob_of(self, token_id: int) -> float | None:
        if token_id == self.chosen_id and self.chosen_logprob is not None:
            return self.chosen_logprob
        for tid, lp in zip(self.ids, self.logprobs):
            if tid == token_id:
                return lp
        return None


class LlamaCppDialect:
    name = "llama.cpp"
    raw_logprobs = True
    """llama.cpp reports pre-sampling probabilities (SCIENCE 5.13)."""

    def __init__(self, client: RemoteClient, props: dict) -> None:
        self.client = client
        self.props = props
        settings = props.get("default_generation_settings", {})
        self.context_length = int(settings.get("n_ctx") or props.get("n_ctx") or 0) or None
        self.max_top_k: int | None = None  # no cap on n_probs
        self.n_vocab: int | None = None
        """Vocabulary size (set by the opener from the tokenizer); rows asked for a whole row."""
        self._safe_id: int | None = None

    def _body(self, ids, k: int, forced: int | None, sample_seed: int | None = None) -> dict:
        sampling = sample_seed is not None
        return {
            "prompt": [int(t) for t in ids],
            "n_predict": 1,
            "n_probs": int(k),
            "post_sampling_probs": False,
            "cache_prompt": True,
            "return_tokens": True,
            # Every sampling field, so the server's defaults cannot change which token it picks.
            # Sampling: the server draws from the plain softmax (T = 1, no truncation) with the seed.
            "temperature": 1.0 if sampling else -1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
            "typical_p": 1.0, "repeat_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
            "dry_multiplier": 0.0, "xtc_probability": 0.0, "mirostat": 0,
            "seed": int(sample_seed) if sampling else 0,
            "logit_bias": [[int(forced), _FORCE_BIAS]] if forced is not None else [],
        }

    def distribution(self, ids, k: int, forced: int | None = None, sample_seed: int | None = None) -> Distribution:
        """With ``sample_seed``, the server also draws the next token (reported as ``chosen_id``)."""
        url = f"{self.client.source.root_url}/completion"
        data = self.client.post(url, self._body(ids, k, forced, sample_seed))
        probs = data.get("completion_probabilities") if isinstance(data, dict) else None
        keep = forced is not None or sample_seed is not None
        if probs:
            entry = probs[0]
            top = entry.get("top_logprobs")
            if top is None:
                raise RemoteError("The llama.cpp server returned no log-probabilities; update llama-server "
                                  "(it needs n_probs support in /completion).")
            chosen_id, chosen_lp = int(entry["id"]), float(entry["logprob"])
            if forced is not None and chosen_id != forced:
                raise RemoteError("The llama.cpp server did not honour logit_bias, so prompt scores cannot be "
                                  "read from it; update llama-server.")
            return Distribution(tuple(int(t["id"]) for t in top), tuple(float(t["logprob"]) for t in top),
                                chosen_id if keep else None, chosen_lp if keep else None)
        # llama.cpp withholds the probabilities of a token that ends inside a UTF-8 character (a
        # byte of an emoji, say). Ask again with a whole-character token forced, for the whole
        # row when we need that byte token's own log-probability.
        chosen = forced
        if chosen is None and sample_seed is not None:
            drawn = data.get("tokens") or []
            chosen = int(drawn[0]) if drawn else None
            if chosen is None:
                raise RemoteError("The llama.cpp server returned no token; update llama-server.")
        rows = k if chosen is None else max(k, self.n_vocab or 1_000_000)
        data = self.client.post(url, self._body(ids, rows, self._whole_char_id()))
        try:
            top = data["completion_probabilities"][0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            raise RemoteError("The llama.cpp server returned no log-probabilities; update llama-server.") from None
        ranked = [(int(t["id"]), float(t["logprob"])) for t in top]
        chosen_lp = None
        if chosen is not None:
            chosen_lp = next((lp for tid, lp in ranked if tid == chosen), None)
        return Distribution(tuple(t for t, _ in ranked[:k]), tuple(lp for _, lp in ranked[:k]),
                            chosen if keep else None, chosen_lp if keep else None)

    def _whole_char_id(self) -> int:
        """A token that is whole UTF-8 text (" the"), to force when the real one is a partial byte."""
        if self._safe_id is None:
            self._safe_id = self.tokenize(" the")[-1]
        return self._safe_id

    def prompt_distributions(self, ids, first: int, k: int) -> list[Distribution]:
        # One request per prefix, in order: each extends the last one by a token, so the
        # server's prompt cache evaluates one new token per request.
        return [self.distribution(ids[:i], k, forced=ids[i]) for i in range(max(1, first), len(ids))]

    def tokenize(self, text: str) -> list[int]:
        data = self.client.post(f"{self.client.source.root_url}/tokenize", {"content": text, "add_special": False})
        return [int(t) for t in data.get("tokens", [])]


class OpenAIDialect:
    name = "openai"

    def __init__(self, client: RemoteClient, model: str, max_model_len: int | None) -> None:
        self.client = client
        self.model = model
        self.context_length = max_model_len
        self.max_top_k: int | None = 20  # vLLM's default --max-logprobs; lowered if the server says less
        self.n_vocab: int | None = None
        # vLLM reports raw logprobs unless started with --logprobs-mode processed_*; we send
        # neutral settings, so both modes give the same numbers here.
        self.raw_logprobs = True

    def _completions(self, ids, k: int, echo: bool, sample_seed: int | None = None) -> dict:
        body = {
            "model": self.model, "prompt": [int(t) for t in ids], "max_tokens": 1,
            "logprobs": int(k), "echo": echo, "top_p": 1.0, "top_k": -1, "min_p": 0.0,
            "temperature": 0.0 if sample_seed is None else 1.0, "return_tokens_as_token_ids": True,
        }
        if sample_seed is not None:
            body["seed"] = int(sample_seed)
        data = self.client.post(f"{self.client.source.base_url}/completions", body)
        try:
            return data["choices"][0]["logprobs"]
        except (KeyError, IndexError, TypeError):
            raise RemoteError("The server returned no log-probabilities; start it with log-probabilities "
                              "enabled (vLLM: --max-logprobs 20 or more).") from None

    def distribution(self, ids, k: int, forced: int | None = None, sample_seed: int | None = None) -> Distribution:
        if forced is not None:
            return self.prompt_distributions(list(ids) + [forced], len(ids), k)[-1]
        logprobs = self._completions(ids, k, echo=False, sample_seed=sample_seed)
        ranked = _ranked(logprobs["top_logprobs"][0])
        chosen_id = chosen_lp = None
        if sample_seed is not None:
            chosen_id = int(str(logprobs["tokens"][0]).split(":", 1)[1])
            chosen_lp = float(logprobs["token_logprobs"][0])
        return Distribution(tuple(t for t, _ in ranked), tuple(lp for _, lp in ranked), chosen_id, chosen_lp)

    def prompt_distributions(self, ids, first: int, k: int) -> list[Distribution]:
        logprobs = self._completions(ids, k, echo=True)
        out = []
        for i in range(max(1, first), len(ids)):
            ranked = _ranked(logprobs["top_logprobs"][i] or {})
            chosen = logprobs["token_logprobs"][i]
            out.append(Distribution(tuple(t for t, _ in ranked), tuple(lp for _, lp in ranked),
                                    int(ids[i]), None if chosen is None else float(chosen)))
        return out

    def tokenize(self, text: str) -> list[int]:
        data = self.client.post(f"{self.client.source.root_url}/tokenize",
                                {"model": self.model, "prompt": text, "add_special_tokens": False})
        return [int(t) for t in data.get("tokens", [])]


def _ranked(top: dict) -> list[tuple[int, float]]:
    """``{"token_id:N": logprob}`` -> [(N, logprob)] most likely first."""
    pairs = []
    for key, lp in top.items():
        if not str(key).startswith("token_id:"):
            raise RemoteError("The server keyed log-probabilities by text, not token id; it must accept "
                              "return_tokens_as_token_ids (vLLM does).")
        pairs.append((int(str(key).split(":", 1)[1]), float(lp)))
    return sorted(pairs, key=lambda p: -p[1])
