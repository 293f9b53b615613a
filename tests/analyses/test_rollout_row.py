"""The one-row rollout equals the row of the full rollout matrix; the row checks see future mass."""

import torch

from explorer.analyses.attention import attention_rollout, query_row_error, rollout_row


def test_rollout_row_equals_full_rollout():
    torch.manual_seed(0)
    L, n = 4, 9
    raw = torch.rand(L, n, n).tril()  # causal rows
    mean = raw / raw.sum(-1, keepdim=True)  # [L, n, n], rows sum to 1
    full = attention_rollout(mean)
    for t in range(n):
        assert torch.allclose(rollout_row(mean, t), full[t], atol=1e-12)


def test_query_row_error_reports_mass_after_the_query():
    row = torch.tensor([0.5, 0.5, 0.0, 0.0])
    assert query_row_error(row, 1) == (0.0, 0.0)
    leaky = torch.tensor([0.5, 0.25, 0.25, 0.0])
    assert query_row_error(leaky, 1) == (0.0, 0.25)
