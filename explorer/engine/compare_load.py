"""Opening the second model of a comparison: another model source, or model A at another precision.

``--compare MODEL`` loads any source ``--model`` accepts (explorer.engine.loading).
``--compare-bf16`` / ``--compare-fp16`` need no second download: model A's loaded weights are
cast into a new module (A itself is untouched). Two models can be compared only when their
vocabularies are the same token for token; anything else is refused with one sentence.
Never imports Textual or Rich.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from explorer.errors import InputError, ModelLoadError

if TYPE_CHECKING:  # torch stays out of the launcher's import path until the screen is up
    from explorer.engine.model import ModelWrapper

PRECISIONS = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


@dataclass(frozen=True)
class CompareRequest:
    """What the user asked to compare model A with: a model source or a precision of A."""

    model: str | None = None
    precision: str | None = None
    """"bfloat16" or "float16" (or "float32", an exact copy, used by the benchmark)."""

    def __post_init__(self) -> None:
        if (self.model is None) == (self.precision is None):
            raise InputError("Compare with either another model (--compare) or a precision (--compare-bf16/--compare-fp16).")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InputError(f'Unknown precision "{self.precision}"; use bfloat16 or float16.')

    @classmethod
    def from_flags(cls, model: str | None, bf16: bool, fp16: bool) -> "CompareRequest | None":
        """The request named by ``--compare`` / ``--compare-bf16`` / ``--compare-fp16``; None for none."""
        chosen = [x for x in (model is not None, bf16, fp16) if x]
        if len(chosen) > 1:
            raise InputError("Use only one of --compare, --compare-bf16 and --compare-fp16.")
        if model is not None:
            if not model.strip():
                raise InputError("--compare needs a model name.")
            return cls(model=model)
        if bf16:
            return cls(precision="bfloat16")
        if fp16:
            return cls(precision="float16")
        return None


def precision_copy(a: "ModelWrapper", precision: str) -> "ModelWrapper":
    """Model A's weights cast to ``precision`` as a second model (no download, A unchanged).

    Each parameter is cast once into the copy (deepcopy's memo maps A's parameter to its cast),
    so memory grows by the copy's size only, never by a full-precision duplicate first; tied
    weights stay tied because they are one parameter. ``.to`` then casts the remaining
    floating buffers exactly as loading with that dtype would.
    """
    import torch

    from explorer.engine.model import ModelWrapper

    dtype = getattr(torch, precision)
    model = a.model
    if precision != "float32" and next(model.parameters()).dtype == dtype:
        raise InputError(f"Model A is already in {precision}; comparing it with a {precision} copy of itself "
                         "would show nothing (drop --bf16, or compare with another precision).")
    memo: dict[int, object] = {}
    with torch.no_grad():
        for p in model.parameters():
            if id(p) not in memo:
                # copy=True: a float32 "copy" of a float32 model must not share A's storage.
                memo[id(p)] = torch.nn.Parameter(p.detach().to(dtype, copy=True), requires_grad=False)
        clone = copy.deepcopy(model, memo)
    clone.to(dtype)
    clone.eval()
    short = PRECISIONS[precision]
    return ModelWrapper(clone, a.tokenizer, name=f"{a.name} @{short}", device=a.device)


def check_vocabularies(a: "ModelWrapper", b: "ModelWrapper") -> None:
    """Refuse two models whose vocabularies are not identical (one sentence naming both)."""
    if a.tokenizer is b.tokenizer and a.vocab_size == b.vocab_size:
        return
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    if va != vb:
        by_id_a = {i: t for t, i in va.items()}
        by_id_b = {i: t for t, i in vb.items()}
        for i in range(max(len(by_id_a), len(by_id_b), max(by_id_a, default=0) + 1, max(by_id_b, default=0) + 1)):
            ta, tb = by_id_a.get(i), by_id_b.get(i)
            if ta != tb:
                raise InputError(
                    f"The two models' vocabularies differ ({a.name}: {len(va)} tokens, {b.name}: {len(vb)} "
                    f"tokens; first difference at id {i}: {ta!r} vs {tb!r}); a comparison needs identical vocabularies."
                )
    if a.vocab_size != b.vocab_size:
        raise InputError(
            f"The two models' output layers differ in size ({a.name}: {a.vocab_size} logits, {b.name}: "
            f"{b.vocab_size}) although their tokenizers agree; KL over the full vocabulary needs the same size."
        )


def load_second_model(a: "ModelWrapper", request: CompareRequest, *, device: str = "auto", bf16: bool = False,
                      trust_remote_code: bool = False, progress: Callable[[str], None] | None = None,
                      loader: Callable | None = None) -> "ModelWrapper":
    """Open model B for a comparison with ``a``; its vocabulary is checked against A's.

    Args:
        a: model A (already loaded).
        request: another model source, or a precision of A.
        device, bf16, trust_remote_code: how a second model source is loaded (as model A was).
        loader: ``explorer.engine.loading.load_model`` (a parameter so tests can make it fail).

    Raises:
        ModelLoadError: B cannot be loaded, or memory ran out (one sentence; A keeps working).
        InputError: the vocabularies differ.
    """
    import torch

    from explorer.engine.model import ModelWrapper

    what = request.model if request.model is not None else f"{a.name} in {request.precision}"
    try:
        if request.precision is not None:
            if progress:
                progress(f"Casting {a.name} to {request.precision} for the comparison…")
            b = precision_copy(a, request.precision)
        else:
            if loader is None:
                from explorer.engine.loading import load_model as loader
            loaded = loader(request.model, device=device, bf16=bf16, trust_remote_code=trust_remote_code,
                            progress=progress)
            b = ModelWrapper.from_loaded(loaded)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise ModelLoadError(
            f"Not enough memory to open {what} beside {a.name} ({type(exc).__name__}); "
            "close other programs, use a smaller model or --compare-bf16."
        ) from None
    check_vocabularies(a, b)
    return b
