"""Opt-in: the remote engine against a vLLM server you started (not run in CI).

    vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --dtype float32 --max-logprobs 100
    VLLM_URL=openai+http://127.0.0.1:8000/v1 [VLLM_TOKENIZER=...] [VLLM_LOCAL_MODEL=bundled] \
        uv run pytest tests/remote/test_vllm.py

With ``VLLM_LOCAL_MODEL`` naming the same weights for the local engine, the numbers are
compared with it (vLLM float32 matched transformers float32 to about 2e-5).
"""

from __future__ import annotations

import math
import os

import pytest

pytestmark = [
    pytest.mark.remote,
    pytest.mark.skipif(not os.environ.get("VLLM_URL"), reason="set VLLM_URL to a running vLLM server to run these"),
]

TOL = 1e-3
PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture(scope="module")
def vllm_engine():
    from explorer.engine.remote.open import open_remote_engine

    engine = open_remote_engine(os.environ["VLLM_URL"], served_model=os.environ.get("VLLM_SERVED_MODEL"),
                                tokenizer=os.environ.get("VLLM_TOKENIZER"))
    yield engine
    engine.close()


def test_the_dialect_is_openai_with_ids(vllm_engine):
    assert vllm_engine.dialect.name == "openai"
    dist = vllm_engine.dialect.distribution(vllm_engine.encode(PROMPT), 5)
    assert len(dist.ids) == 5 and list(dist.logprobs) == sorted(dist.logprobs, reverse=True)
    assert sum(math.exp(lp) for lp in dist.logprobs) <= 1 + 1e-6


def test_echo_prompt_scores_equal_forced_steps(vllm_engine):
    ids = vllm_engine.encode(PROMPT)
    echoed = vllm_engine.dialect.prompt_distributions(ids, 1, 5)
    assert len(echoed) == len(ids) - 1
    for i in (1, len(ids) // 2, len(ids) - 1):
        step = vllm_engine.dialect.distribution(ids[:i], 5)
        lp = step.logprob_of(ids[i])
        if lp is not None:
            assert echoed[i - 1].chosen_logprob == pytest.approx(lp, abs=TOL)


def test_a_step_sends_one_request(vllm_engine, test_config):
    from explorer.engine.session import Session

    session = Session(vllm_engine, test_config, prompts=[vllm_engine.encode(PROMPT)])
    view = session.compute()
    before = len(vllm_engine.client.sent)
    session.append(view.candidates[0].id)
    session.compute()
    assert len(vllm_engine.client.sent) - before == 1


@pytest.mark.skipif(not os.environ.get("VLLM_LOCAL_MODEL"), reason="set VLLM_LOCAL_MODEL to compare with local")
def test_top_k_equal_the_local_engine(vllm_engine, test_config):
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.session import Session

    local = ModelWrapper.from_loaded(load_model(os.environ["VLLM_LOCAL_MODEL"], device="cpu"))
    ids = local.encode(PROMPT)
    r = Session(vllm_engine, test_config, prompts=[ids]).compute()
    lv = Session(local, test_config, prompts=[ids]).compute()
    by_id = {c.id: c.logprob for c in lv.candidates}
    for c in r.candidates[:10]:
        assert c.logprob == pytest.approx(by_id[c.id], abs=TOL)
    for a, b in zip(r.tokens[1:], lv.tokens[1:]):
        assert a.logprob == pytest.approx(b.logprob, abs=TOL)
