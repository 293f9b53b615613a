"""The remote engine against a real llama-server on the bundled weights (float32 GGUF).

Numbers are compared with the local transformers engine on the same weights. Tolerance:
llama.cpp's float32 CPU kernels and torch's sum in different orders; measured on a
26-token prompt, the top-20 log-probabilities agreed to 1.0e-4 (same order) and the prompt's
to 2.3e-4. We allow ``LOGPROB_TOL`` = 2e-3.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.remote.conftest import SERVED_NAME, LlamaServer

pytestmark = [pytest.mark.remote, pytest.mark.integration]

LOGPROB_TOL = 2e-3
PROMPT = "The capital of France is Paris. The capital of Germany is"


@pytest.fixture
def remote_session(remote_engine, test_config):
    from explorer.engine.session import Session

    return Session(remote_engine, test_config, prompts=[remote_engine.encode(PROMPT)])


@pytest.fixture
def local_session(bundled_wrapper, test_config):
    from explorer.engine.session import Session

    return Session(bundled_wrapper, test_config, prompts=[bundled_wrapper.encode(PROMPT)])


def test_same_tokenizer_as_local(remote_engine, bundled_wrapper):
    assert remote_engine.encode(PROMPT) == bundled_wrapper.encode(PROMPT)
    assert remote_engine.vocab_size == bundled_wrapper.vocab_size
    assert remote_engine.capabilities == frozenset()
    from explorer.engine.interface import Engine

    assert isinstance(remote_engine, Engine)


def test_top_k_logprobs_equal_the_local_engine(remote_session, local_session, test_config):
    remote, local = remote_session.compute(), local_session.compute()
    k = len(remote.candidates)
    assert k == min(test_config.display.tokens_to_show, 20)
    local_by_id = {c.id: c.logprob for c in local.candidates}
    for r, lc in zip(remote.candidates[:k], local.candidates[:k]):
        # Same order, except where two neighbours are closer than the tolerance.
        if r.id != lc.id:
            assert abs(r.logprob - lc.logprob) < LOGPROB_TOL
        assert r.logprob == pytest.approx(local_by_id[r.id], abs=LOGPROB_TOL)
        assert r.logit is None and r.zscore is None  # no logits from a server: shown as n/a
    assert remote.next_energy is None and remote.entropy_is_lower_bound


def test_entropy_is_a_labelled_lower_bound_of_the_exact_entropy(remote_session, local_session):
    remote, local = remote_session.compute(), local_session.compute()
    # Mass and bound are over every row the server returned (20), the table may show fewer.
    dist = remote_session.cached_trace(remote_session.current.uid).last_distribution()
    probs = [math.exp(lp) for lp in dist.logprobs]
    assert len(probs) == 20
    assert remote.covered_mass == pytest.approx(sum(probs), abs=1e-9)
    assert 0 < remote.covered_mass <= 1 + 1e-6
    # The bound ignores the tail's positive terms: never above the exact value.
    assert remote.next_entropy_bits <= local.next_entropy_bits + 1e-3
    assert remote.next_entropy_bits == pytest.approx(-sum(p * math.log2(p) for p in probs), rel=1e-9)



def test_prompt_logprobs_equal_the_local_probability_mode(remote_session, local_session):
    remote, local = remote_session.compute(), local_session.compute()
    assert remote.ids == local.ids
    assert remote.tokens[0].logprob is None
    for r, lt in zip(remote.tokens[1:], local.tokens[1:]):
        assert r.logprob == pytest.approx(lt.logprob, abs=LOGPROB_TOL), r.text
        if lt.rank is not None and lt.rank <= 20:
            assert r.rank is not None and abs(r.rank - lt.rank) <= 1


def test_a_step_sends_only_what_it_must(remote_session, remote_engine):
    view = remote_session.compute()
    sent = remote_engine.client.sent
    top = view.candidates[0].id
    before = len(sent)
    remote_session.append(top)
    after_append = remote_session.compute()
    new = sent[before:]
    # One request: the new last position's top-k. The appended token's probability was
    # already in the previous top-k, and the prompt goes as ids (the server caches its prefix).
    assert len(new) == 1
    assert new[0].body["prompt"] == list(view.ids) + [top]
    assert new[0].body["n_predict"] == 1
    assert after_append.tokens[-1].logprob == pytest.approx(view.candidates[0].logprob, abs=1e-9)
    before = len(sent)
    remote_session.pop()
    again = remote_session.compute()
    assert len(sent) == before  # a pop costs nothing
    assert [c.id for c in again.candidates] == [c.id for c in view.candidates]


def test_appending_a_token_outside_the_top_k_scores_it_exactly(remote_session, local_session, bundled_wrapper):
    remote_session.compute()
    local = local_session.compute()
    shown = {c.id for c in local.candidates[:20]}
    outside = next(t for t in bundled_wrapper.encode(" zebra crossing") if t not in shown)
    for s in (remote_session, local_session):
        s.append(outside)
    r, lc = remote_session.compute(), local_session.compute()
    assert r.tokens[-1].logprob == pytest.approx(lc.tokens[-1].logprob, abs=LOGPROB_TOL)
    assert r.tokens[-1].rank is None or r.tokens[-1].rank > 20


def test_next_command_through_the_server(llama_server, capsys):
    import json

    from explorer.cli import main

    rc = main(["next", "--model", llama_server.url, "--served-model", SERVED_NAME, "--tokenizer", "bundled",
               "--prompt", "The capital of France is", "--top", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["candidates"][0]["token"] == " Paris"
    assert len(out["candidates"]) == 5
    assert out["entropy_is_lower_bound"] is True and out["energy"] is None
    assert out["candidates"][0]["logit"] is None


def _cli_error(args, capsys) -> str:
    from explorer.cli import main

    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "Traceback" not in err
    # Progress lines may come first; the error is the one last line.
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and last.count(". ") == 0, err
    return last


def test_unreachable_server_is_one_sentence(capsys):
    from tests.remote.conftest import free_port

    err = _cli_error(["next", "--model", f"openai+http://127.0.0.1:{free_port()}/v1", "--tokenizer", "bundled",
                      "--prompt", "hi"], capsys)
    assert "Cannot reach the server" in err


def test_wrong_model_name_is_one_sentence(llama_server, capsys):
    err = _cli_error(["next", "--model", llama_server.url, "--served-model", "no-such-model",
                      "--tokenizer", "bundled", "--prompt", "hi"], capsys)
    assert "does not serve" in err and "--served-model" in err


def test_tokenizer_mismatch_is_detected(llama_server, tiny_tokenizer, tmp_path, capsys):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    err = _cli_error(["next", "--model", llama_server.url, "--tokenizer", str(tmp_path / "tok"),
                      "--prompt", "hi"], capsys)
    assert "splits text differently" in err


def test_a_refused_api_key_is_one_sentence(monkeypatch, capsys):
    server = LlamaServer("--api-key", "right-key")
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
        err = _cli_error(["next", "--model", server.url, "--tokenizer", "bundled", "--prompt", "hi"], capsys)
        assert "OPENAI_API_KEY" in err and "wrong-key" not in err
        monkeypatch.setenv("OPENAI_API_KEY", "right-key")
        from explorer.cli import main

        assert main(["next", "--model", server.url, "--tokenizer", "bundled", "--prompt", "hi", "--json"]) == 0
    finally:
        server.stop()


def test_a_time_out_is_one_sentence(llama_server):
    from explorer.engine.remote.client import RemoteClient, RemoteError
    from explorer.engine.remote.source import parse_remote_source

    client = RemoteClient(parse_remote_source(llama_server.url), timeout=1e-4, retries=1)
    with pytest.raises(RemoteError, match="did not answer within"):
        client.post(f"{llama_server.root}/completion", {"prompt": list(range(10, 400)), "n_predict": 1,
                                                          "cache_prompt": False})


def test_a_server_killed_mid_request_gives_an_error_not_a_crash(test_config):
    import threading

    from explorer.engine.remote.client import RemoteError
    from explorer.engine.remote.open import open_remote_engine
    from explorer.engine.session import Session

    server = LlamaServer()
    try:
        engine = open_remote_engine(server.url, tokenizer="bundled", timeout=10)
        engine.client.retries = 1
        session = Session(engine, test_config, prompts=[engine.encode("Once upon a time " * 60)])
        # Scoring a long prompt is one request per prefix: kill the server while they run.
        threading.Timer(1.0, server.proc.kill).start()
        with pytest.raises(RemoteError, match="Cannot reach the server"):
            session.compute()
        # Nothing the user made is lost: the prompt is still there, as ids, and the trace
        # holds no half-scored positions (a later compute would ask again).
        assert session.current.ids == engine.encode("Once upon a time " * 60)
        trace = session.cached_trace(session.current.uid)
        assert trace is None or all(d is not None for d in trace.dists)
    finally:
        server.stop()


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def test_tree_through_the_server_equals_the_local_tree(remote_engine, bundled_wrapper):
    from explorer.engine.remote.tree import build_tree_remote
    from explorer.engine.tree import TreeParams, build_tree

    params = TreeParams(max_depth=4, max_completed_paths=3)
    ids = bundled_wrapper.encode("The three primary colours are")
    local = build_tree(bundled_wrapper, ids, params)
    sent_before = len(remote_engine.client.sent)
    remote = build_tree_remote(remote_engine, ids, params)
    # 1 / 0.01 thresholds: llama.cpp (no cap) was asked for enough rows to cover them.
    assert "some branches may be missing" not in remote.message
    a, b = list(_walk(local.root)), list(_walk(remote.root))
    assert [n.token_id for n in a] == [n.token_id for n in b]
    assert [n.depth for n in a] == [n.depth for n in b]
    for x, y in zip(a, b):
        assert y.prob == pytest.approx(x.prob, abs=LOGPROB_TOL)
        assert [c["token_id"] for c in x.candidates] == [c["token_id"] for c in y.candidates]
    # One request per expanded node.
    expanded = sum(1 for n in b if n.candidates)
    assert len(remote_engine.client.sent) - sent_before == expanded == remote.forward_passes


def test_greedy_generation_through_the_server_equals_the_local_one(remote_engine, bundled_wrapper):
    from explorer.engine.generate import generate
    from explorer.engine.remote.generate import generate_remote

    ids = bundled_wrapper.encode("Once upon a time")
    forced = bundled_wrapper.tokenizer(" there lived", add_special_tokens=False)["input_ids"]
    local = generate(bundled_wrapper, ids, 8, forced_ids=forced)
    remote = generate_remote(remote_engine, ids, 8, forced_ids=forced)
    assert remote.new_ids == local.new_ids
    for x, y in zip(local.steps, remote.steps):
        assert y.forced == x.forced
        assert y.logprob == pytest.approx(x.logprob, abs=LOGPROB_TOL)
        assert y.top_ids[:3] == x.top_ids[:3]


def test_sampled_generation_replays_with_its_seed(remote_engine):
    from explorer.engine.remote.generate import generate_remote

    ids = remote_engine.encode("Once upon a time")
    first = generate_remote(remote_engine, ids, 6, sample=True, seed=7)
    again = generate_remote(remote_engine, ids, 6, sample=True, seed=7)
    assert first.new_ids == again.new_ids
    for step in first.steps:  # the server reports the drawn token's raw log-probability
        assert step.logprob <= 0.0 and math.isfinite(step.logprob)


def test_logprobs_and_analyze_commands_through_the_server(llama_server, bundled_wrapper, tmp_path, capsys):
    import json

    from explorer.cli import main

    common = ["--model", llama_server.url, "--tokenizer", "bundled", "--prompt", "The capital of France is"]
    out = tmp_path / "lp.jsonl"
    assert main(["logprobs", *common, "--max-new-tokens", "3", "--out", str(out)]) == 0
    record = json.loads(out.read_text().splitlines()[-1])
    assert record["data"][0]["token"] == " Paris"
    capsys.readouterr()
    assert main(["analyze", *common, "--mode", "probability", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "probability" and data["tokens"][0]["value"] is None
    ids = bundled_wrapper.encode("The capital of France is")
    with torch.no_grad():  # the probability mode, independently: a softmax of the local logits
        logp = torch.log_softmax(bundled_wrapper.model(torch.tensor([ids])).logits[0].float(), -1)
    for i, token in enumerate(data["tokens"][1:], 1):
        assert math.log(token["value"]) == pytest.approx(float(logp[i - 1, ids[i]]), abs=LOGPROB_TOL)
    err = _cli_error(["analyze", *common, "--mode", "attention"], capsys)
    assert "Not available from this engine" in err


def test_a_capped_server_makes_the_tree_say_what_it_could_not_see(llama_server):
    from explorer.engine.remote.open import open_remote_engine
    from explorer.engine.remote.tree import build_tree_remote
    from explorer.engine.tree import TreeParams

    engine = open_remote_engine(llama_server.url, tokenizer="bundled")
    try:
        engine.dialect.max_top_k = 5  # as a server started with a cap of 5 rows would answer
        result = build_tree_remote(engine, engine.encode("Once upon a"), TreeParams(max_depth=2, max_completed_paths=1))
        assert "some branches may be missing" in result.message
        assert all(len(n.candidates) <= 5 for n in _walk(result.root))
    finally:
        engine.close()


def test_the_served_float32_gguf_holds_the_weights_the_local_engine_runs():
    """The server's file and the local cache hold the same dequantized numbers (no second rounding)."""
    import gguf
    from safetensors import safe_open

    from explorer.engine.loading import bundled_gguf_path, convert_gguf
    from tests.remote.conftest import f32_gguf

    reader = gguf.GGUFReader(str(f32_gguf()))
    served = {t.name: t for t in reader.tensors}
    assert {t.tensor_type.name for t in reader.tensors} == {"F32"}
    entry = convert_gguf(bundled_gguf_path())
    with safe_open(str(entry / "model.safetensors"), "pt") as local:
        pairs = {"token_embd.weight": "model.embed_tokens.weight",
                 "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight"}
        for gguf_name, hf_name in pairs.items():
            ours = torch.from_numpy(served[gguf_name].data.copy()).reshape(local.get_tensor(hf_name).shape)
            assert torch.equal(ours, local.get_tensor(hf_name))


def test_tokens_that_end_inside_a_character_are_scored_exactly(remote_engine, bundled_wrapper, test_config):
    """llama.cpp withholds probabilities of partial UTF-8 tokens; the client asks again for them."""
    from explorer.engine.session import Session

    ids = bundled_wrapper.encode("Emoji time: 🦜🦩 and 東京")
    pieces = [bundled_wrapper.decode([t]) for t in ids]
    assert any("\ufffd" in p for p in pieces)  # some tokens are single bytes of a character
    remote = Session(remote_engine, test_config, prompts=[ids]).compute()
    local = Session(bundled_wrapper, test_config, prompts=[ids]).compute()
    for r, lt in zip(remote.tokens[1:], local.tokens[1:]):
        assert r.logprob == pytest.approx(lt.logprob, abs=LOGPROB_TOL)
