"""Pilot tests of the comparison view (issue 16) on two tiny models with the same tokenizer.

The numbers on screen are checked against two independent full forward passes (one per
model), not against the engine's incremental traces.
"""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.compare import Comparison
from explorer.engine.model import ModelWrapper
from explorer.engine.session import Session
from explorer.ui.app import ExplorerApp
from explorer.ui.widgets.token_table import TokenTable
from tests.ui.helpers import footer_keys, notifications, panel_text, press_e_until, settle, status_text, text_of

SIZE = (140, 40)
TEXT = "once upon a time there was a big red dog and the cat sat on the mat"


@pytest.fixture(scope="module")
def other_wrapper(tiny_sp_tokenizer):
    """Model B: the tiny Llama's architecture with other random weights (seed 1), same tokenizer."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(tiny_sp_tokenizer.get_vocab()), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=1, eos_token_id=2, pad_token_id=3)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    return ModelWrapper(model, tiny_sp_tokenizer, name="tiny-llama-seed1", device="cpu")


@pytest.fixture
def app(tiny_sp_wrapper, other_wrapper, test_config):
    session = Session(tiny_sp_wrapper, test_config, seed=0)
    session.comparison = Comparison(tiny_sp_wrapper, other_wrapper)
    session.replace_ids(session.ids_from_text(TEXT))
    return ExplorerApp(session, autosave=False)


def _logp(wrapper: ModelWrapper, ids: list[int]) -> torch.Tensor:
    """log-softmax of one full forward pass, float64 ``[n, vocab]`` (independent of the traces)."""
    with torch.no_grad():
        logits = wrapper.model(input_ids=torch.tensor([ids])).logits[0]  # [n, vocab]
    return torch.log_softmax(logits.double(), dim=-1)


def _column(table: TokenTable, key: str) -> list[str]:
    keys = [k.value for k in table.columns]
    return [str(table.get_cell_at((r, keys.index(key)))) for r in range(table.row_count)]


def _kls(wrapper_a, wrapper_b, ids) -> list[float]:
    """KL(A‖B) of the distribution each token was drawn from (token i: position i − 1)."""
    la, lb = _logp(wrapper_a, ids), _logp(wrapper_b, ids)
    kl = (la.exp() * (la - lb)).sum(-1)  # [n]
    return [float(kl[i - 1]) for i in range(1, len(ids))]


async def test_columns_equal_two_full_passes(app, tiny_sp_wrapper, other_wrapper):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = list(app.session.current.ids)
        la, lb = _logp(tiny_sp_wrapper, ids)[-1], _logp(other_wrapper, ids)[-1]  # next-token rows
        table = app.query_one(TokenTable)
        shown = [int(x) for x in _column(table, "id")]
        k = app.session.config.display.tokens_to_show
        # Rows from both top-k lists: a token only B ranks high is in the table too.
        assert set(torch.topk(la, k).indices.tolist()) | set(torch.topk(lb, k).indices.tolist()) == set(shown)
        for tid, pa, pb, d in zip(shown, _column(table, "prob"), _column(table, "logit"), _column(table, "delta")):
            ea, eb = math.exp(float(la[tid])), math.exp(float(lb[tid]))
            assert float(pa) == pytest.approx(ea, abs=6e-5)
            assert float(pb) == pytest.approx(eb, abs=6e-5)
            assert float(d) == pytest.approx(ea - eb, abs=1.2e-4)
        headers = [str(c.label) for c in table.columns.values()]
        assert headers[:5] == ["#A", "token", "id", "p_A", "p_B"] and "Δ" in headers and "#B" in headers
        # The panel: KL(A‖B) of the next token, TV and top agreement; the status bar names B.
        pa_all, pb_all = la.exp(), lb.exp()
        next_kl = float((pa_all * (la - lb)).sum())
        panel = text_of(app, "#comparison-panel")
        assert f"KL(A‖B) {next_kl:.4g} nats" in panel
        assert f"TV {0.5 * float((pa_all - pb_all).abs().sum()):.4f}" in panel
        assert ("same" if int(la.argmax()) == int(lb.argmax()) else "differs") in panel
        assert "vs B tiny-llama-seed1" in status_text(app)
        assert {"y", "Y", "W"} <= footer_keys(app)


async def test_y_jumps_to_the_next_big_disagreement(app, tiny_sp_wrapper, other_wrapper):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = list(app.session.current.ids)
        kls = [None] + _kls(tiny_sp_wrapper, other_wrapper, ids)
        p90 = app.comparison_view.summary.p90_kl
        big = [i for i, k in enumerate(kls) if k is not None and k >= p90 - 1e-9]
        assert 0 < len(big) < len(ids) - 1  # the jump skips some tokens
        await pilot.press("home")
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert app.session.cursor_index() == big[0]
        assert f"Cursor: {big[0] + 1}/{len(ids)}" in status_text(app)
        assert f"KL(A‖B) {kls[big[0]]:.4g} nats" in notifications(app)[-1]
        await pilot.press("Y")  # back from the first big one wraps to the last
        await settle(app, pilot)
        assert app.session.cursor_index() == big[-1]


async def test_divergence_mode_gets_the_comparison(app, tiny_sp_wrapper, other_wrapper):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Divergence")
        ids = list(app.session.current.ids)
        s = app.comparison_view.summary
        assert f"mean {s.mean_kl:.4g}" in panel_text(app)
        expected = sum(_kls(tiny_sp_wrapper, other_wrapper, ids)) / (len(ids) - 1)
        assert s.mean_kl == pytest.approx(expected, abs=1e-5)


async def test_S_swaps_a_and_b(app, tiny_sp_wrapper, other_wrapper):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("W")
        await settle(app, pilot)
        assert app.session.wrapper is other_wrapper  # generation and trees now run on the old B
        assert "vs B tiny-llama" in status_text(app) and "tiny-llama-seed1 vs" in status_text(app)
        ids = list(app.session.current.ids)
        la, lb = _logp(other_wrapper, ids)[-1], _logp(tiny_sp_wrapper, ids)[-1]  # A is the seed-1 model now
        table = app.query_one(TokenTable)
        for tid, pa, pb in zip(_column(table, "id"), _column(table, "prob"), _column(table, "logit")):
            assert float(pa) == pytest.approx(math.exp(float(la[int(tid)])), abs=6e-5)
            assert float(pb) == pytest.approx(math.exp(float(lb[int(tid)])), abs=6e-5)
        await pilot.press("l")  # stepping after the swap: both models, one token
        await settle(app, pilot)
        assert len(app.session.current.ids) == len(ids) + 1
        assert not notifications(app, "error")


async def test_keys_hidden_and_explained_without_a_comparison(tiny_session):
    app = ExplorerApp(tiny_session, autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert not {"y", "Y", "W"} & footer_keys(app)
        await pilot.press("y")
        await pilot.press("W")
        await settle(app, pilot)
        assert sum("No second model is open" in n for n in notifications(app, "warning")) == 2
        assert not app.query("#comparison-panel")


async def test_R_report_in_divergence_mode(app, tmp_path):
    """The report gets the comparison as the mode on screen does (it is not an option to export)."""
    import os
    from pathlib import Path

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press_e_until(app, pilot, "Divergence")
        await pilot.press("R")
        await settle(app, pilot, rounds=20)
        assert not notifications(app, "error")
        (report,) = (Path(os.environ["TOKEN_EXPLORER_DATA_DIR"]) / "reports").glob("report-*.html")
        html = report.read_text()
        s = app.comparison_view.summary
        assert "Divergence" in html and f"{s.mean_kl:.4g}" in html and "No second model" not in html
