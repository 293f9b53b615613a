"""Pilot tests for the token tree screen, generation (g, G) and the logprob export (X) on the tiny model."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from rich.console import Console

from explorer.engine.session import Session
from explorer.engine.tree import build_tree
from explorer.ui.app import ExplorerApp
from explorer.ui.features.trees import GENERATE_TOKENS, app_tree_params
from explorer.ui.screens.tree import TreeScreen
from tests.engine.tree_compare import NODE_FIELDS, assert_same_tree
from tests.ui.helpers import notifications, settle

SIZE = (120, 40)




@pytest.fixture
def app(tiny_session):
    return ExplorerApp(tiny_session, autosave=False)


async def _open_tree(app, pilot) -> TreeScreen:
    await settle(app, pilot)
    await pilot.press("T")
    await settle(app, pilot)
    assert isinstance(app.screen, TreeScreen)
    return app.screen


async def test_T_builds_the_engine_tree_and_shows_it(app):
    async with app.run_test(size=SIZE) as pilot:
        prompt = None
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        screen = await _open_tree(app, pilot)
        expected = build_tree(app.session.wrapper, prompt, app_tree_params())
        assert_same_tree(screen.result.root.to_dict(), expected.root.to_dict())
        assert screen.result.nodes == expected.nodes
        summary = str(screen.query_one("#tree-summary").render())
        assert f"{expected.nodes} nodes" in summary
        assert f"{expected.explored_mass():.4g}" in summary
        tree = screen.query_one("#token-tree")
        # the most probable path is open: one visible line per node along it, plus siblings
        assert tree.last_line >= expected.max_depth_reached
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TreeScreen)
        assert app.session.count == 1


async def test_enter_opens_the_highlighted_path_as_a_new_prompt(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        screen = await _open_tree(app, pilot)
        await pilot.press("down", "down", "down")
        node = screen.selected()
        assert node.depth == 3
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, TreeScreen)
        assert app.session.count == 2 and app.session.index == 1
        assert app.session.current.ids == prompt + node.path_ids()
        assert len(node.path_ids()) == 3
        assert app.view.ids == tuple(prompt + node.path_ids())


async def test_a_branching_tree_and_enter_on_a_side_branch(app, monkeypatch):
    """Low thresholds make the tiny model's tree branch; the screen's tree must still be the engine's."""
    from explorer.engine.tree import TreeParams
    from explorer.ui.features import trees

    params = TreeParams(0.02, 0.06, 30, 0.01, 4, 5)
    monkeypatch.setattr(trees, "app_tree_params", lambda: params)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        screen = await _open_tree(app, pilot)
        expected = build_tree(app.session.wrapper, prompt, params)
        assert len(expected.root.children) > 1
        assert assert_same_tree(screen.result.root.to_dict(), expected.root.to_dict()) == expected.nodes
        tree = screen.query_one("#token-tree")
        assert len(tree.root.children) == len(expected.root.children)
        second = tree.root.children[1]
        tree.move_cursor(second)
        await pilot.pause()
        assert screen.selected() is second.data
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(screen.node_panel)
        panel = console.export_text()
        top = second.data.candidates[0]
        assert str(top["token_id"]) in panel and f"{top['prob']:.4f}" in panel
        assert second.data.full_text.strip()[-10:] in panel
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.session.current.ids == prompt + [expected.root.children[1].token_id]


async def test_enter_past_max_prompts_is_refused(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for _ in range(app.session.config.prompt.max_prompts - 1):
            await pilot.press("d")
            await settle(app, pilot)
        await _open_tree(app, pilot)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TreeScreen)  # stays, so another action is possible
        assert app.session.count == app.session.config.prompt.max_prompts
        assert any("max_prompts" in m for m in notifications(app))


async def test_s_saves_the_notebook_json_without_overwriting(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tree(app, pilot)
        await pilot.press("s")
        await pilot.press("s")
        await pilot.pause()
        files = sorted((tmp_path / "data" / "trees").glob("*.json"))
        assert len(files) == 2  # the second save made a new file
        data = json.loads(files[0].read_text(encoding="utf-8"))
        assert data["metadata"]["prompt"] == screen.result.prompt
        assert data["metadata"]["parameters"]["max_depth"] == app_tree_params().max_depth
        stack, count = [data["tree"]], 0
        while stack:
            node = stack.pop()
            assert set(NODE_FIELDS) <= set(node)
            stack.extend(node["children"])
            count += 1
        assert count == screen.result.nodes
        assert any("Saved to" in m for m in notifications(app))
        pages = sorted((tmp_path / "data" / "trees").glob("*.html"))
        assert [p.stem for p in pages] == [f.stem for f in files]  # a collapsible page beside each JSON
        assert pages[0].read_text(encoding="utf-8").count('class="node"') == screen.result.nodes


async def test_escape_stops_a_tree_build_and_keeps_it_marked_incomplete(app, monkeypatch):
    import explorer.engine.tree as tree_mod

    real = tree_mod.build_tree

    def slow_build(*args, should_stop, **kwargs):
        # Ask for the stop ourselves as soon as the build polls, as Escape would mid-build.
        def stop_after_first_poll():
            app.call_from_thread(app.action_stop_job)
            return should_stop()
        polls = {"n": 0}

        def poll():
            polls["n"] += 1
            return stop_after_first_poll() if polls["n"] >= 2 else should_stop()
        return real(*args, should_stop=poll, **kwargs)

    monkeypatch.setattr(tree_mod, "build_tree", slow_build)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open_tree(app, pilot)
        assert screen.result.incomplete and screen.result.stop_reason == "cancelled"
        assert "INCOMPLETE" in str(screen.query_one("#tree-summary").render())
        assert 1 <= screen.result.nodes < build_tree(app.session.wrapper, list(app.session.current.ids),
                                                     app_tree_params()).nodes
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TreeScreen)
        assert not app.query("#job-progress")


def _argmax_chain(model, ids: list[int], n: int, eos: set[int]) -> list[int]:
    """Greedy continuation by full forward passes (no cache): the independent reference."""
    out = []
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]  # [vocab]
            t = int(torch.argmax(logits))
            out.append(t)
            seq.append(t)
            if t in eos:
                break
    return out


async def test_g_appends_the_greedy_chain(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        await pilot.press("g")
        await settle(app, pilot)
        w = app.session.wrapper
        expected = _argmax_chain(w.model, prompt, GENERATE_TOKENS, set(w.eos_ids))
        assert app.session.current.ids == prompt + expected
        assert app.view.ids == tuple(prompt + expected)  # recomputed: every mode applies
        assert not app.query("#job-progress")


async def _sampled_tokens(wrapper, config, seed: int) -> list[int]:
    app = ExplorerApp(Session(wrapper, config, seed=seed), autosave=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = list(app.session.current.ids)
        await pilot.press("G")
        await settle(app, pilot)
        ids = list(app.session.current.ids)
        assert ids[: len(prompt)] == prompt
        return ids[len(prompt):]


async def test_G_replays_with_the_session_seed(tiny_sp_wrapper, test_config):
    from explorer.engine.decoding.generate import generate

    first = await _sampled_tokens(tiny_sp_wrapper, test_config, seed=7)
    second = await _sampled_tokens(tiny_sp_wrapper, test_config, seed=7)
    other = await _sampled_tokens(tiny_sp_wrapper, test_config, seed=8)
    assert first and first == second
    prompt = Session(tiny_sp_wrapper, test_config).current.ids
    assert first == generate(tiny_sp_wrapper, prompt, GENERATE_TOKENS, sample=True, seed=7).new_ids
    assert other != first


async def test_X_exports_the_appended_tokens_as_a_logprobs_record(app, tmp_path):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("X")  # nothing appended yet: a warning, no file
        await settle(app, pilot)
        out = tmp_path / "data" / "logprobs.jsonl"
        assert not out.exists()
        assert any("Nothing was appended" in m for m in notifications(app))
        prompt = list(app.session.current.ids)
        await pilot.press("g")
        await settle(app, pilot)
        await pilot.press("X", "X")
        await settle(app, pilot)
        lines = out.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2  # appended, not replaced
        rec = json.loads(lines[0])
        w = app.session.wrapper
        new = app.session.current.ids[len(prompt):]
        assert rec["prompt"] == w.decode(prompt)
        assert rec["response"] == w.tokenizer.decode(new, skip_special_tokens=True)
        assert [d["token"] for d in rec["data"]] == [w.decode([t]) for t in new]
        with torch.no_grad():
            logits = w.model(input_ids=torch.tensor([app.session.current.ids])).logits[0]  # [n, vocab]
        logp = torch.log_softmax(logits.float(), dim=-1)
        for k, (entry, token_id) in enumerate(zip(rec["data"], new)):
            position = len(prompt) + k - 1  # the distribution that predicted this token
            assert entry["logprob"] == pytest.approx(float(logp[position, token_id]), abs=1e-4)
            assert entry["prob"] == pytest.approx(100 * math.exp(entry["logprob"]))  # percent
            assert len(entry["other_tokens"]) == 5
            top = torch.topk(logp[position], 5)
            assert [o["token"] for o in entry["other_tokens"]] == [w.decode([int(i)]) for i in top.indices]
            for alt in entry["other_tokens"]:
                assert set(alt) == {"token", "logprob", "prob"}
                assert alt["prob"] == pytest.approx(100 * math.exp(alt["logprob"]))
        assert any("Appended a record of" in m for m in notifications(app))


async def test_a_path_past_the_context_is_refused(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        limit = app.session.wrapper.context_length
        assert not app.open_path_as_prompt([5] * (limit + 1))
        await pilot.pause()
        assert app.session.count == 1
        assert any("past the model's context" in m for m in notifications(app))
