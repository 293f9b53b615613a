"""Two-model comparison: exact self-compare, KL against two independent full passes, stepping, refusals."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.engine.compare import Comparison, next_big_disagreement, score_ids
from explorer.engine.compare_load import CompareRequest, load_second_model, precision_copy
from explorer.engine.compare_stats import compare_rows, percentile, summarize
from explorer.engine.model import ModelWrapper
from explorer.engine.session import Session
from explorer.errors import InputError, ModelLoadError

TEXT = "once upon a time there was a big red dog and the cat sat on the mat"


def _tiny_llama(vocab: int, seed: int, context: int = 64):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                      bos_token_id=1, eos_token_id=2, pad_token_id=3)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def other_wrapper(tiny_sp_tokenizer):
    """A second tiny model: same tokenizer, other random weights (seed 1)."""
    model = _tiny_llama(len(tiny_sp_tokenizer.get_vocab()), seed=1)
    return ModelWrapper(model, tiny_sp_tokenizer, name="tiny-llama-seed1", device="cpu")


def _full_pass_numbers(wrapper: ModelWrapper, ids: list[int]) -> torch.Tensor:
    """log-softmax of one full forward pass, float64 ``[n, vocab]`` (independent of the trace)."""
    with torch.no_grad():
        logits = wrapper.model(input_ids=torch.tensor([ids])).logits[0]  # [n, vocab]
    return torch.log_softmax(logits.double(), dim=-1)


def _compared_session(wrapper_a, wrapper_b, config, text=TEXT) -> Session:
    session = Session(wrapper_a, config, seed=0)
    session.comparison = Comparison(wrapper_a, wrapper_b)
    session.replace_ids(session.ids_from_text(text))
    return session


def test_self_compare_is_exactly_zero(tiny_sp_wrapper, test_config):
    session = _compared_session(tiny_sp_wrapper, tiny_sp_wrapper, test_config)
    session.compute()
    view = session.comparison.view(session)
    scored = view.tokens[1:]
    assert all(t.kl == 0.0 and t.kl_reverse == 0.0 and t.tv == 0.0 for t in scored)
    assert all(t.same_top for t in scored) and all(t.delta_logp == 0.0 for t in scored)
    assert view.summary.mean_kl == 0.0 and view.summary.max_kl == 0.0 and view.summary.same_top == 1.0
    assert view.next_kl == 0.0 and view.next_same_top
    assert all(c.p_a == c.p_b for c in view.candidates)


def test_kl_matches_two_independent_full_passes(tiny_sp_wrapper, other_wrapper, test_config):
    session = _compared_session(tiny_sp_wrapper, other_wrapper, test_config)
    step = session.compute()
    view = session.comparison.view(session)
    ids = list(step.ids)
    la, lb = _full_pass_numbers(tiny_sp_wrapper, ids), _full_pass_numbers(other_wrapper, ids)
    pa, pb = la.exp(), lb.exp()
    kl = (pa * (la - lb)).sum(-1)  # [n] KL(A‖B) at each position
    kl_rev = (pb * (lb - la)).sum(-1)
    tv = 0.5 * (pa - pb).abs().sum(-1)
    for t in view.tokens[1:]:
        p = t.index - 1
        assert t.kl == pytest.approx(float(kl[p]), abs=1e-5)
        assert t.kl_reverse == pytest.approx(float(kl_rev[p]), abs=1e-5)
        assert t.tv == pytest.approx(float(tv[p]), abs=1e-5)
        assert t.logp_a == pytest.approx(float(la[p, t.id]), abs=1e-4)
        assert t.logp_b == pytest.approx(float(lb[p, t.id]), abs=1e-4)
        assert t.top_a == int(la[p].argmax()) and t.top_b == int(lb[p].argmax())
    assert view.next_kl == pytest.approx(float(kl[-1]), abs=1e-5)
    assert max(t.kl for t in view.tokens[1:]) > 1e-3  # two different random models do differ
    for c in view.candidates:
        assert c.p_a == pytest.approx(math.exp(float(la[-1, c.id])), abs=1e-6)
        assert c.p_b == pytest.approx(math.exp(float(lb[-1, c.id])), abs=1e-6)
        assert c.delta == pytest.approx(c.p_a - c.p_b)
    top_a = set(torch.topk(la[-1], 5).indices.tolist())
    top_b = set(torch.topk(lb[-1], 5).indices.tolist())
    assert top_a | top_b <= {c.id for c in view.candidates}


def test_steps_together_one_forward_each(tiny_sp_wrapper, other_wrapper, test_config):
    session = _compared_session(tiny_sp_wrapper, other_wrapper, test_config)
    session.compute()
    uid = session.current.uid
    trace_a = session.cached_trace(uid)
    state = session.comparison._states[uid]
    calls = (trace_a.forward_calls, state.b.forward_calls)
    session.append(5)
    session.compute()
    assert (trace_a.forward_calls, state.b.forward_calls) == (calls[0] + 1, calls[1] + 1)
    after_append = session.comparison.view(session)
    session.pop()
    session.compute()
    popped = session.comparison.view(session)
    assert len(popped.tokens) == len(after_append.tokens) - 1
    assert [t.kl for t in popped.tokens] == [t.kl for t in after_append.tokens[:-1]]
    # A fresh comparison over the same ids gives the same numbers as the stepped one.
    fresh = _compared_session(tiny_sp_wrapper, other_wrapper, test_config)
    fresh.replace_ids(list(after_append.ids))
    fresh.compute()
    again = fresh.comparison.view(fresh)
    for x, y in zip(after_append.tokens[1:], again.tokens[1:]):
        assert x.kl == pytest.approx(y.kl, abs=1e-5)


def test_duplicate_prompt_and_swap(tiny_sp_wrapper, other_wrapper, test_config):
    session = _compared_session(tiny_sp_wrapper, other_wrapper, test_config)
    session.compute()
    before = session.comparison.view(session)
    session.add_prompt()
    session.compute()
    dup = session.comparison.view(session)
    assert [t.kl for t in dup.tokens] == [t.kl for t in before.tokens]
    session.comparison.swap(session)
    assert session.wrapper is other_wrapper and session.comparison.b is tiny_sp_wrapper
    swapped = session.comparison.view(session)
    for x, y in zip(before.tokens[1:], swapped.tokens[1:]):
        assert (y.kl, y.kl_reverse, y.logp_a, y.logp_b) == (x.kl_reverse, x.kl, x.logp_b, x.logp_a)
    session.comparison.swap(session)
    assert session.wrapper is tiny_sp_wrapper


def test_precision_copy_matches_a_cast_model(tiny_sp_wrapper):
    b = precision_copy(tiny_sp_wrapper, "bfloat16")
    assert next(tiny_sp_wrapper.model.parameters()).dtype == torch.float32  # A untouched
    assert next(b.model.parameters()).dtype == torch.bfloat16
    import copy

    reference = copy.deepcopy(tiny_sp_wrapper.model).to(torch.bfloat16)
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(b.model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_vocabulary_mismatch_is_refused(tiny_sp_wrapper, tiny_tokenizer):
    vocab = len(tiny_tokenizer.get_vocab())
    other = ModelWrapper(_tiny_llama(vocab, seed=2), tiny_tokenizer, name="word-level", device="cpu")
    with pytest.raises(InputError, match="vocabularies differ.*first difference at id 4"):
        Comparison(tiny_sp_wrapper, other)


def test_shorter_context_is_used_and_said(tiny_sp_wrapper, tiny_sp_tokenizer, test_config):
    short = ModelWrapper(_tiny_llama(len(tiny_sp_tokenizer.get_vocab()), seed=1, context=16),
                         tiny_sp_tokenizer, name="short", device="cpu")
    comparison = Comparison(tiny_sp_wrapper, short)
    assert comparison.context_length == 16
    assert any("shorter context (16 tokens" in n for n in comparison.notes)
    session = Session(tiny_sp_wrapper, test_config, seed=0)
    session.comparison = comparison
    session.replace_ids([5] * 16)
    with pytest.raises(InputError, match="context"):
        session.append(6)


def test_unloadable_and_out_of_memory_are_one_sentence(tiny_sp_wrapper):
    def no_model(name, **_kw):
        raise ModelLoadError(f"Model path {name} does not exist.")

    def oom(name, **_kw):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ModelLoadError, match="does not exist"):
        load_second_model(tiny_sp_wrapper, CompareRequest(model="./nope"), loader=no_model)
    with pytest.raises(ModelLoadError, match="^Not enough memory to open big-model beside tiny-llama"):
        load_second_model(tiny_sp_wrapper, CompareRequest(model="big-model"), loader=oom)


def test_score_ids_windows(tiny_sp_wrapper, other_wrapper):
    comparison = Comparison(tiny_sp_wrapper, other_wrapper)
    ids = tiny_sp_wrapper.encode(TEXT)
    rows = score_ids(comparison, ids, window=6)
    assert [r.index for r in rows] == list(range(len(ids)))
    assert [r.kl is None for r in rows] == [i % 6 == 0 for i in range(len(ids))]
    la, lb = _full_pass_numbers(tiny_sp_wrapper, ids[6:12]), _full_pass_numbers(other_wrapper, ids[6:12])
    kl = (la.exp() * (la - lb)).sum(-1)
    assert [r.kl for r in rows[7:12]] == pytest.approx(kl[:5].tolist(), abs=1e-5)
    with pytest.raises(InputError, match="--window"):
        score_ids(comparison, ids, window=1)


def test_summary_and_percentiles():
    assert percentile([0.0, 1.0, 2.0, 3.0], 0.5) == 1.5
    assert percentile([5.0], 0.99) == 5.0
    values = [float(i) for i in range(1001)]
    s = summarize(values, [True] * 750 + [False] * 251)
    assert (s.tokens, s.mean_kl, s.p90_kl, s.p99_kl, s.p999_kl, s.max_kl) == (1001, 500.0, 900.0, 990.0, 999.0, 1000.0)
    assert s.same_top == pytest.approx(750 / 1001)
    assert summarize([], []) is None
    rows = compare_rows(torch.tensor([[0.0, 1.0, -math.inf]]), torch.tensor([[1.0, 0.0, 2.0]]))
    assert torch.isfinite(rows.kl_ab).all()  # a token A rules out adds nothing to KL(A‖B)
    assert math.isinf(float(rows.kl_ba[0]))  # ...but KL(B‖A) is infinite, as it truly is


def test_next_big_disagreement():
    values = [None, 0.1, 2.0, 0.0, 3.0]
    assert next_big_disagreement(values, 2, 1.0) == 4
    assert next_big_disagreement(values, 4, 1.0) == 2
    assert next_big_disagreement(values, 0, 10.0) is None


def test_same_precision_copy_is_refused(tiny_sp_wrapper):
    half = precision_copy(tiny_sp_wrapper, "bfloat16")
    with pytest.raises(InputError, match="already in bfloat16"):
        precision_copy(half, "bfloat16")


def test_same_dtype_copy_owns_its_weights(tiny_sp_wrapper):
    b = precision_copy(tiny_sp_wrapper, "float32")
    pa, pb = next(tiny_sp_wrapper.model.parameters()), next(b.model.parameters())
    assert torch.equal(pa, pb) and pa.data_ptr() != pb.data_ptr()
