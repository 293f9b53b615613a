"""Training an SAE offline on a model's residual stream: TopK (Gao et al. 2024) or JumpReLU (Rajamanoharan et al. 2024).

Phases, each resumable from ``OUT/checkpoint`` (written atomically every minute or so):

1. ``heldout``: activations of held-out documents, kept apart for the final figures.
2. ``collect``: activations at ``blocks.L.hook_resid_post`` of training documents into a buffer
   (float16), until ``max_tokens`` or half the time budget. Position 0 of every document is
   left out: it is the attention sink, whose norm is many times the others'.
3. ``train``: Adam over random batches of the buffer for ``epochs`` passes or until 85 % of the
   time budget. Inputs are scaled by s = √d / mean‖x‖ for the optimiser; s is folded into the
   weights on save, so the files read raw activations. TopK: ``f = TopK(ReLU((x − b_dec) W_enc +
   b_enc))`` with the AuxK loss on dead latents; JumpReLU: ``f = z·H(z − θ)`` with ``z = x W_enc +
   b_enc``, loss ``FVU + λ·L0`` and straight-through estimators (rectangle kernel, bandwidth ε)
   for θ. Decoder rows are kept at unit norm.
4. ``finish``: FVU, L0 and the dead-feature fraction on the held-out tokens; SAELens files
   (cfg.json + sae_weights.safetensors); the feature index of top-activating contexts over
   every buffered token; ``training.json`` with the settings and figures.

Never imports Textual or Rich.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from explorer.engine.sae.base import Sae, ordinary_rows
from explorer.engine.sae.feature_index import INDEX_FILE, TopContexts, write_index
from explorer.engine.sae.hooks import capture_batch
from explorer.engine.sae.formats.saelens import CFG_FILE, WEIGHTS_FILE, save_saelens
from explorer.engine.sae.reference import reference_variance
from explorer.errors import InputError
from explorer.io.atomic import atomic_file

STATE_VERSION = 1


@dataclass
class TrainSettings:
    layer: int
    kind: str = "topk"
    """topk or jumprelu."""
    k: int = 32
    width: int = 2048
    max_tokens: int = 200_000
    """Training activations to collect (held-out tokens not counted)."""
    max_seconds: float | None = None
    """Wall-clock budget of this invocation (None: no limit)."""
    context: int = 128
    batch: int = 1024
    epochs: float = 8.0
    lr: float | None = None
    """Adam learning rate; default 1e-3·√(1024 / width)."""
    l0_coeff: float = 3e-3
    """JumpReLU: λ of the L0 penalty (inputs scaled to mean norm √d)."""
    bandwidth: float = 1e-3
    """JumpReLU: ε of the straight-through estimator."""
    heldout_tokens: int = 4096
    seed: int = 0
    corpus: tuple[str, ...] = ()
    docs_per_forward: int = 8
    checkpoint_seconds: float = 60.0

    def check(self) -> None:
        if self.kind not in ("topk", "jumprelu"):
            raise InputError(f'--kind must be topk or jumprelu, found "{self.kind}".')
        if self.width < 2 or self.width > 1_048_576:
            raise InputError(f"--width must be between 2 and 1048576, found {self.width}.")
        if not 1 <= self.k <= self.width:
            raise InputError(f"--k must be between 1 and the width ({self.width}), found {self.k}.")
        if self.max_tokens < 1:
            raise InputError(f"--max-tokens must be positive, found {self.max_tokens}.")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise InputError(f"--max-seconds must be positive, found {self.max_seconds}.")
        if self.context < 4:
            raise InputError(f"--context must be at least 4 tokens, found {self.context}.")


@dataclass
class TrainReport:
    fvu: float
    """Held-out Σ‖x − x̂‖² / Σ‖x − x̄‖² over ordinary tokens (not the first of a document, not
    the rare massive-activation sinks with a norm over 10x the median; see base.ordinary_rows)."""
    fvu_all_tokens: float
    """The same over every held-out token, sinks included (dominated by them: read with care)."""
    massive_tokens: int
    """Held-out tokens left out of ``fvu`` as massive-activation sinks."""
    l0: float
    """Mean number of active features per held-out token."""
    dead_fraction: float
    """Share of features active on none of the scanned tokens (training buffer + held-out)."""
    dead_fraction_heldout: float
    heldout_tokens: int
    train_tokens: int
    steps: int
    seconds: float
    out: str
    source: str
    history: list[dict] = field(default_factory=list)


class Progress:
    """A one-line progress bar on stderr, redrawn at most 4 times a second."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self._last = 0.0
        # A terminal gets a bar redrawn in place; a log file gets a line every 10 seconds.
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._pending = False

    def show(self, label: str, done: float, total: float | None, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.25 if self.tty else 10.0):
            return
        self._last = now
        if total:
            frac = max(0.0, min(1.0, done / total))
            bar = "#" * int(frac * 24)
            text = f"\r{label:<8} [{bar:<24}] {frac * 100:5.1f}%  {extra}"
        else:
            text = f"\r{label:<8} {extra}"
        self.stream.write(text[:160].ljust(100) if self.tty else text[1:].rstrip() + "\n")
        self.stream.flush()
        self._pending = self.tty

    def end(self) -> None:
        if self._pending:
            self.stream.write("\n")
            self.stream.flush()
        self._pending = False


# ------------------------------------------------------------------ the model being trained
class _JumpReLU(torch.autograd.Function):
    """z·H(z − θ); ∂/∂θ through the rectangle-kernel straight-through estimator."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * (z > theta)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        eps = ctx.eps
        kernel = ((z - theta).abs() < eps / 2).to(g.dtype)
        return g * (z > theta), (-(theta / eps) * kernel * g).sum(0), None


class _Step(torch.autograd.Function):
    """H(z − θ); no gradient to z, rectangle-kernel gradient to θ (for the L0 penalty)."""

    @staticmethod
    def forward(ctx, z, theta, eps):
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, g):
        z, theta = ctx.saved_tensors
        eps = ctx.eps
        kernel = ((z - theta).abs() < eps / 2).to(g.dtype)
        return torch.zeros_like(z), (-(1.0 / eps) * kernel * g).sum(0), None


class TrainableSae(torch.nn.Module):
    """Parameters and the training forward pass (inputs already scaled)."""

    def __init__(self, d: int, width: int, kind: str, k: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(width, d, generator=g)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)  # unit-norm decoder rows
        self.W_dec = torch.nn.Parameter(W_dec)  # [width, d]
        self.W_enc = torch.nn.Parameter(W_dec.T.clone())  # [d, width]
        self.b_enc = torch.nn.Parameter(torch.zeros(width))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))
        self.kind, self.k = kind, k
        if kind == "jumprelu":
            self.log_threshold = torch.nn.Parameter(torch.full((width,), math.log(0.1)))

    def encode_sparse(self, x: torch.Tensor, eps: float = 1e-3):
        """(features [B, width] or (vals, idx), pre-activations, l0 term)."""
        if self.kind == "topk":
            pre = (x - self.b_dec) @ self.W_enc + self.b_enc  # [B, width]
            vals, idx = pre.topk(self.k, dim=-1)  # [B, k]
            return (torch.relu(vals), idx), pre, None
        pre = x @ self.W_enc + self.b_enc  # [B, width]
        theta = self.log_threshold.exp()
        f = _JumpReLU.apply(pre, theta, eps)
        l0 = _Step.apply(pre, theta, eps).sum(-1).mean()
        return f, pre, l0

    def decode(self, enc) -> torch.Tensor:
        if isinstance(enc, tuple):
            vals, idx = enc
            return F.embedding_bag(idx, self.W_dec, per_sample_weights=vals, mode="sum") + self.b_dec  # [B, d]
        return enc @ self.W_dec + self.b_dec

    @torch.no_grad()
    def renorm_decoder(self) -> None:
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def drop_parallel_grad(self) -> None:
        """Remove the part of ∂/∂W_dec that would change the rows' norm (kept at 1)."""
        if self.W_dec.grad is not None:
            par = (self.W_dec.grad * self.W_dec.data).sum(-1, keepdim=True)
            self.W_dec.grad -= par * self.W_dec.data

    def to_sae(self, scale: float, hook: str, source: str) -> Sae:
        """The trained SAE on raw activations: the input scale is folded into the weights."""
        W_enc = self.W_enc.detach() * scale
        W_dec = self.W_dec.detach() / scale
        b_dec = self.b_dec.detach() / scale
        if self.kind == "topk":
            return Sae(W_enc=W_enc, b_enc=self.b_enc.detach().clone(), W_dec=W_dec, b_dec=b_dec, hook_in=hook,
                       hook_out=hook, format="saelens", source=source, activation="topk", k=self.k,
                       apply_b_dec_to_input=True)
        return Sae(W_enc=W_enc, b_enc=self.b_enc.detach().clone(), W_dec=W_dec, b_dec=b_dec, hook_in=hook,
                   hook_out=hook, format="saelens", source=source, activation="jumprelu",
                   threshold=self.log_threshold.detach().exp(), apply_b_dec_to_input=False)


# ------------------------------------------------------------------ checkpoints
def check_not_trained(out: Path, overwrite: bool) -> None:
    """Refuse to train into a folder that holds a finished SAE: a trained SAE is never replaced
    by accident (hours of work, and its feature index), only with ``--overwrite``."""
    if overwrite:
        return
    for name in (WEIGHTS_FILE, CFG_FILE):
        if (Path(out) / name).exists():
            raise InputError(f"{out} already holds a trained SAE; give another --out, or add --overwrite "
                             "to replace it.")


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _flatten_docs(docs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    flat = np.fromiter((t for d in docs for t in d), dtype=np.int64, count=int(offsets[-1]))
    return torch.from_numpy(flat), torch.from_numpy(offsets)


def _unflatten_docs(flat: torch.Tensor, offsets: torch.Tensor) -> list[list[int]]:
    f, o = flat.tolist(), offsets.tolist()
    return [f[o[i]:o[i + 1]] for i in range(len(o) - 1)]


class Trainer:
    """One training run into ``out`` (see the module docstring).

    Args:
        wrapper: the model (the bundled one for the shipped SAE).
        settings: what to train and the budget.
        out: the output folder (its ``checkpoint/`` holds the resumable state).
        resume: continue from ``out/checkpoint`` instead of starting over.
        progress: where the progress bar goes (default stderr).
    """

    def __init__(self, wrapper, settings: TrainSettings, out: Path, resume: bool = False,
                 progress: Progress | None = None, overwrite: bool = False) -> None:
        settings.check()
        if not resume:
            check_not_trained(Path(out), overwrite)
        if not 0 <= settings.layer < wrapper.n_layers:
            raise InputError(f"--layer must be between 0 and {wrapper.n_layers - 1} for {wrapper.name}, "
                             f"found {settings.layer}.")
        self.w, self.s, self.out = wrapper, settings, Path(out)
        self.ckpt = self.out / "checkpoint"
        self.hook = f"blocks.{settings.layer}.hook_resid_post"
        self.d = int(wrapper.config.hidden_size)
        self.progress = progress or Progress()
        torch.manual_seed(settings.seed)
        if settings.corpus:
            from explorer.engine.sae.training.data import CorpusSource

            self.source = CorpusSource(wrapper, list(settings.corpus), settings.context, settings.seed)
        else:
            from explorer.engine.sae.training.data import SampledSource

            self.source = SampledSource(wrapper, settings.context, settings.seed)
        self.model = TrainableSae(self.d, settings.width, settings.kind, settings.k, settings.seed)
        lr = settings.lr or 1e-3 * math.sqrt(1024 / settings.width)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.9, 0.999))
        self.state = {"version": STATE_VERSION, "phase": "heldout", "next_doc": 0, "next_heldout": 0,
                      "step": 0, "scale": None, "history": [], "elapsed_before": 0.0}
        self.docs: list[list[int]] = []
        self.heldout_docs: list[list[int]] = []
        self.acts: list[torch.Tensor] = []  # chunks [m, d] float16
        self.rows: list[tuple[int, int]] = []  # (doc, pos) of each buffered activation
        self.heldout_acts: list[torch.Tensor] = []
        self.heldout_rows: list[tuple[int, int]] = []
        self.since_fired = torch.zeros(settings.width, dtype=torch.long)
        if resume:
            self._load_checkpoint()
        elif self.ckpt.exists():
            raise InputError(f"{self.ckpt} holds an unfinished run; add --resume to continue it or remove it.")

    # ------------------------------------------------------------ budget
    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _out_of_time(self, share: float) -> bool:
        return self.s.max_seconds is not None and self._elapsed() >= share * self.s.max_seconds

    # ------------------------------------------------------------ checkpoint
    def _settings_key(self) -> dict:
        return {k: getattr(self.s, k) for k in ("layer", "kind", "k", "width", "context", "seed")} | {
            "corpus": list(self.s.corpus), "model": self.w.name}

    def _save_checkpoint(self, with_buffer: bool) -> None:
        self.ckpt.mkdir(parents=True, exist_ok=True)
        tensors = {f"param.{n}": p for n, p in self.model.named_parameters()}
        for n, p in self.model.named_parameters():
            st = self.opt.state.get(p)
            if st:
                tensors[f"opt.{n}.exp_avg"] = st["exp_avg"]
                tensors[f"opt.{n}.exp_avg_sq"] = st["exp_avg_sq"]
                tensors[f"opt.{n}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
        tensors["since_fired"] = self.since_fired
        _save_tensors(tensors, self.ckpt / "weights.safetensors")
        if with_buffer:
            buf = {}
            if self.acts:
                buf["acts"] = torch.cat(self.acts)
                buf["rows"] = torch.tensor(self.rows, dtype=torch.long)
            if self.heldout_acts:
                buf["heldout_acts"] = torch.cat(self.heldout_acts)
                buf["heldout_rows"] = torch.tensor(self.heldout_rows, dtype=torch.long)
            if self.docs:
                buf["docs_flat"], buf["docs_offsets"] = _flatten_docs(self.docs)
            if self.heldout_docs:
                buf["heldout_flat"], buf["heldout_offsets"] = _flatten_docs(self.heldout_docs)
            _save_tensors(buf or {"empty": torch.zeros(1)}, self.ckpt / "buffer.safetensors")
        state = dict(self.state, settings=self._settings_key(), elapsed_before=self.state["elapsed_before"] + self._elapsed())
        from explorer.io.atomic import atomic_write_text

        atomic_write_text(self.ckpt / "state.json", json.dumps(state, indent=1))
        self._last_ckpt = time.monotonic()

    def _load_checkpoint(self) -> None:
        path = self.ckpt / "state.json"
        if not path.is_file():
            raise InputError(f"--resume: {path} does not exist; start without --resume.")
        try:
            state = json.loads(path.read_text())
            weights = _load_tensors(self.ckpt / "weights.safetensors")
            buf = _load_tensors(self.ckpt / "buffer.safetensors")
        except Exception as exc:
            raise InputError(f"--resume: the checkpoint in {self.ckpt} cannot be read ({exc}); remove it and start over.") from exc
        if state.get("version") != STATE_VERSION or state.get("settings") != self._settings_key():
            raise InputError(f"--resume: the checkpoint in {self.ckpt} was made with other settings "
                             f"({state.get('settings')}); use the same --layer/--kind/--k/--width/--corpus.")
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.copy_(weights[f"param.{n}"])
        for n, p in self.model.named_parameters():
            if f"opt.{n}.exp_avg" in weights:
                self.opt.state[p] = {"step": torch.tensor(float(weights[f"opt.{n}.step"][0])),
                                     "exp_avg": weights[f"opt.{n}.exp_avg"].clone(),
                                     "exp_avg_sq": weights[f"opt.{n}.exp_avg_sq"].clone()}
        self.since_fired = weights["since_fired"].clone()
        if "acts" in buf:
            self.acts = [buf["acts"]]
            self.rows = [tuple(r) for r in buf["rows"].tolist()]
        if "heldout_acts" in buf:
            self.heldout_acts = [buf["heldout_acts"]]
            self.heldout_rows = [tuple(r) for r in buf["heldout_rows"].tolist()]
        if "docs_flat" in buf:
            self.docs = _unflatten_docs(buf["docs_flat"], buf["docs_offsets"])
        if "heldout_flat" in buf:
            self.heldout_docs = _unflatten_docs(buf["heldout_flat"], buf["heldout_offsets"])
        self.state = {k: v for k, v in state.items() if k != "settings"}

    # ------------------------------------------------------------ phases
    def _activations(self, docs: list[list[int]]) -> torch.Tensor:
        """resid_post at the layer for equal-length documents: ``[B, n, d]``."""
        return capture_batch(self.w, docs, [self.hook])[self.hook]

    def _gather(self, stream: str, need_tokens: int, share: float) -> None:
        """Collect activations of the stream's documents (position 0 left out) until ``need_tokens``."""
        is_train = stream == "train"
        acts, rows, docs = (self.acts, self.rows, self.docs) if is_train else (self.heldout_acts, self.heldout_rows,
                                                                              self.heldout_docs)
        key = "next_doc" if is_train else "next_heldout"
        get = self.source.train_doc if is_train else self.source.heldout_doc
        have = len(rows)
        while have < need_tokens and not self._out_of_time(share):
            batch = []
            while len(batch) < self.s.docs_per_forward:
                doc = get(self.state[key] + len(batch))
                if doc is None:
                    break
                batch.append(doc)
            if not batch:
                break  # the corpus is used up
            by_len: dict[int, list[list[int]]] = {}
            for doc in batch:
                by_len.setdefault(len(doc), []).append(doc)
            for group in by_len.values():
                a = self._activations(group)  # [b, n, d]
                for doc, doc_acts in zip(group, a):
                    docs.append(doc)
                    acts.append(doc_acts[1:].to(torch.float16))  # drop the sink at position 0
                    rows.extend((len(docs) - 1, p) for p in range(1, len(doc)))
            self.state[key] += len(batch)
            have = len(rows)
            if self.state["scale"] is None and is_train:
                sample = torch.cat(acts).float()
                self.state["scale"] = float(math.sqrt(self.d) / sample.norm(dim=-1).mean())
            self.progress.show(stream if not is_train else "collect", have, need_tokens,
                               f"{have:,} / {need_tokens:,} tokens  {self._elapsed():.0f}s")
            if is_train and time.monotonic() - self._last_ckpt > 2 * self.s.checkpoint_seconds:
                self._save_checkpoint(with_buffer=True)
        self.progress.show(stream if not is_train else "collect", have, need_tokens,
                           f"{have:,} tokens  {self._elapsed():.0f}s", force=True)
        self.progress.end()

    def _train(self) -> None:
        data = torch.cat(self.acts)  # [N, d] float16
        n = data.shape[0]
        scale = self.state["scale"]
        total_steps = max(1, math.ceil(self.s.epochs * n / self.s.batch))
        if self.state["step"] == 0:
            with torch.no_grad():  # start the decoder bias at the data mean (a cheap geometric-median stand-in)
                self.model.b_dec.copy_(data[: min(n, 65536)].float().mean(0) * scale)
        gen = torch.Generator().manual_seed(self.s.seed + 17 + self.state["step"])
        dead_after = max(10 * self.s.batch, min(n, 200_000) // 2)
        m = self.model
        while self.state["step"] < total_steps and not self._out_of_time(0.85):
            idx = torch.randint(0, n, (min(self.s.batch, n),), generator=gen)
            x = data[idx].float() * scale  # [B, d]
            enc, pre, l0_term = m.encode_sparse(x, self.s.bandwidth)
            x_hat = m.decode(enc)
            var = ((x - x.mean(0)) ** 2).sum()
            err = x - x_hat
            fvu = (err ** 2).sum() / var
            loss = fvu
            fvu_value = float(fvu.detach())
            if isinstance(enc, tuple):
                fired = torch.zeros(self.s.width, dtype=torch.bool)
                fired[enc[1][enc[0] > 0].unique()] = True
                self.since_fired += x.shape[0]
                self.since_fired[fired] = 0
                dead = self.since_fired > dead_after
                n_dead = int(dead.sum())
                if n_dead:  # AuxK: the top dead latents explain the residual (Gao et al., appendix B.1)
                    k_aux = min(self.d // 2, n_dead)
                    aux_vals, aux_idx = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1)
                    e_hat = F.embedding_bag(aux_idx, m.W_dec, per_sample_weights=torch.relu(aux_vals), mode="sum")
                    aux = ((e_hat - err.detach()) ** 2).sum() / var
                    loss = loss + (1 / 32) * min(n_dead / k_aux, 1.0) * aux
                l0_value = float((enc[0] > 0).sum(-1).float().mean())
            else:
                loss = loss + self.s.l0_coeff * l0_term
                l0_value = float(l0_term.detach())
                fired = (enc > 0).any(0)
                self.since_fired += x.shape[0]
                self.since_fired[fired] = 0
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            m.drop_parallel_grad()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            self.opt.step()
            m.renorm_decoder()
            self.state["step"] += 1
            step = self.state["step"]
            if step % 20 == 0 or step == total_steps:
                self.state["history"].append({"step": step, "fvu": round(fvu_value, 5), "l0": round(l0_value, 2),
                                              "dead": int((self.since_fired > dead_after).sum())})
            self.progress.show("train", step, total_steps,
                               f"step {step}/{total_steps}  batch FVU {fvu_value:.3f}  L0 {l0_value:.1f}  "
                               f"{self._elapsed():.0f}s")
            if time.monotonic() - self._last_ckpt > self.s.checkpoint_seconds:
                self._save_checkpoint(with_buffer=False)
        self.progress.show("train", self.state["step"], total_steps, f"step {self.state['step']}", force=True)
        self.progress.end()

    @torch.no_grad()
    def _finish(self) -> TrainReport:
        sae = self.model.to_sae(self.state["scale"], self.hook, str(self.out / "sae_weights.safetensors"))
        held = torch.cat(self.heldout_acts).float() if self.heldout_acts else torch.zeros(0, self.d)
        fvu = fvu_all = float("nan")
        reference: dict = {}
        l0, massive, fired_held = float("nan"), 0, torch.zeros(sae.d_sae, dtype=torch.bool)
        if held.shape[0] >= 2:
            f, x_hat = sae.forward(held)
            fvu_all = float(((held - x_hat) ** 2).sum() / ((held - held.mean(0)) ** 2).sum())
            keep = ordinary_rows(held, skip_first=False)  # position 0 was never stored
            massive = int((~keep).sum())
            hk, xk = held[keep], x_hat[keep]
            fvu = float(((hk - xk) ** 2).sum() / ((hk - hk.mean(0)) ** 2).sum())
            # The fixed denominator of the per-token reference FVU (explorer.engine.sae.reference).
            ref_value, ref_tokens = reference_variance(held)
            reference = {"reference_variance": ref_value, "reference_variance_tokens": ref_tokens,
                         "reference_variance_source": f"the held-out tokens of training ({self.source.description})"}
            l0 = float((f != 0).sum(-1).float().mean())
            fired_held = (f != 0).any(0)
        # the feature index: every buffered and held-out token through the encoder
        acc = TopContexts(sae.d_sae, top_n=8)
        all_docs = self.docs + self.heldout_docs
        parts = [(torch.cat(self.acts) if self.acts else torch.zeros(0, self.d), self.rows, 0),
                 (held, self.heldout_rows, len(self.docs))]
        scanned = 0
        total = sum(len(p[1]) for p in parts)
        for acts, rows, doc_offset in parts:
            rows_t = torch.tensor(rows, dtype=torch.long).reshape(-1, 2)
            for start in range(0, acts.shape[0], 4096):
                f = sae.encode(acts[start:start + 4096].float())  # [b, d_sae]
                nz = torch.nonzero(f)  # [m, 2]: (row, feature)
                r = rows_t[start:start + 4096]
                acc.add((r[nz[:, 0], 0] + doc_offset).numpy(), r[nz[:, 0], 1].numpy(), nz[:, 1].numpy(),
                        f[nz[:, 0], nz[:, 1]].numpy(), n_tokens=f.shape[0])
                scanned += f.shape[0]
                self.progress.show("index", scanned, total, f"{scanned:,} / {total:,} tokens")
        self.progress.end()
        render = self.w.token_text
        text_of: dict[int, str] = {}
        doc_texts = [[text_of.setdefault(t, render(t).text) for t in doc] for doc in all_docs]
        dead_fraction = float((acc.counts == 0).mean())
        report = TrainReport(
            fvu=fvu, fvu_all_tokens=fvu_all, massive_tokens=massive, l0=l0, dead_fraction=dead_fraction, dead_fraction_heldout=float((~fired_held).float().mean()),
            heldout_tokens=int(held.shape[0]), train_tokens=len(self.rows), steps=int(self.state["step"]),
            seconds=round(self.state["elapsed_before"] + self._elapsed(), 1), out=str(self.out),
            source=self.source.description, history=self.state["history"],
        )
        quality = {"heldout_fvu": fvu, "heldout_fvu_all_tokens": fvu_all, "heldout_massive_tokens": massive,
                   "heldout_l0": l0, "dead_fraction": dead_fraction,
                   "heldout_tokens": report.heldout_tokens, "train_tokens": report.train_tokens, **reference}
        save_saelens(sae, self.out, metadata={
            "model_name": self.w.name, "hook_name": self.hook, "context_size": self.s.context, "prepend_bos": False,
            "exclude_first_token": True, "dataset_path": self.source.description,
            "trained_by": "token-explorer sae train", "quality": quality})
        write_index(self.out / INDEX_FILE, acc, doc_texts, {"model": self.w.name, "hook": self.hook})
        from explorer.io.atomic import atomic_write_text

        atomic_write_text(self.out / "training.json", json.dumps(
            {"settings": asdict(self.s), "report": asdict(report)}, indent=1, default=str) + "\n")
        shutil.rmtree(self.ckpt, ignore_errors=True)  # finished: the checkpoint is no longer needed
        return report

    def run(self) -> TrainReport:
        """Run (or continue) every phase; returns the quality figures."""
        self._t0 = time.monotonic()
        self._last_ckpt = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        if self.state["phase"] == "heldout":
            self._gather("heldout", self.s.heldout_tokens, share=0.1)
            self.state["phase"] = "collect"
            self._save_checkpoint(with_buffer=True)
        if self.state["phase"] == "collect":
            self._gather("train", self.s.max_tokens, share=0.5)
            if not self.rows:
                raise InputError("No training activations were collected within the budget; raise --max-seconds.")
            self.state["phase"] = "train"
            self._save_checkpoint(with_buffer=True)
        if self.state["phase"] == "train":
            self._train()
            self._save_checkpoint(with_buffer=False)
        return self._finish()
