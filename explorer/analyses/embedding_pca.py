"""Token embedding PCA (seed 002): the prompt's input embeddings projected on their first two principal axes.

The embeddings are those the first block sees (Gemma's ×√d included), centred over the
prompt's tokens, decomposed with an SVD. Each axis is oriented so that its largest
loading is positive, which makes the picture stable from one call to the next. Tokens are
coloured by their first coordinate; both coordinates and the explained-variance ratios are
in ``extra`` for the scatter plot. Never imports Textual or Rich.
"""

from __future__ import annotations

import torch

from explorer.analyses.base import AnalysisContext, ModeResult, Scatter
from explorer.engine.capture import input_embeddings


def pca_2d(x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Project rows of ``x`` [n, d] on their first two principal axes.

    Returns:
        (coordinates ``[n, 2]`` float64, explained-variance ratio of the two axes).
    """
    xc = x.double() - x.double().mean(0, keepdim=True)  # [n, d]
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)  # u [n, k], s [k], vh [k, d]
    k = min(2, s.shape[0])
    for i in range(k):  # orient each axis: largest |loading| positive
        if vh[i, vh[i].abs().argmax()] < 0:
            vh[i] = -vh[i]
    coords = torch.zeros(x.shape[0], 2, dtype=torch.float64)
    coords[:, :k] = xc @ vh[:k].T
    var = s.pow(2)
    total = float(var.sum())
    ratios = [float(var[i]) / total if total > 0 and i < k else 0.0 for i in range(2)]
    return coords, ratios


class EmbeddingPcaMode:
    name = "embedding_pca"
    label = "Embedding PCA"
    lazy = True
    requires = frozenset({"hidden_states"})

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        n = len(ctx.view.ids)
        if n < 2:
            return ModeResult(values=(None,) * n, legend="Embedding PCA needs at least two tokens.",
                              details=("Add tokens: a principal axis needs two points.",))
        emb = input_embeddings(ctx.wrapper, ctx.view.ids)  # [n, d]
        coords, ratios = pca_2d(emb)
        values = tuple(float(v) for v in coords[:, 0])
        bound = max(abs(v) for v in values) or 1.0
        return ModeResult(
            values=values, lo=-bound, hi=bound, colors=("#7b3294", "#008837"), fmt="{:.3f}",
            legend=(f"First principal coordinate of each token's input embedding (PCA over this prompt's "
                    f"tokens, {ratios[0]:.1%} of the variance): purple −{bound:.3g} → green +{bound:.3g}."),
            details=(f"explained variance: PC1 {ratios[0]:.1%}, PC2 {ratios[1]:.1%}",
                     "scatter: x = PC1, y = PC2, one labelled point per token"),
            scatter=Scatter(f"PC1 {ratios[0]:.0%}, PC2 {ratios[1]:.0%}", coords.tolist()),
            extra={"coords": coords.tolist(), "explained_variance_ratio": ratios},
        )
