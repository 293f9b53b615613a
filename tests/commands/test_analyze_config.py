"""`analyze` hands the configuration to the mode: `--mode sae_features` reads the [[sae]]
entries of the config file (it used to fail with "SAE features need the configuration")."""

from __future__ import annotations

import json

from explorer.cli import main
from explorer.engine.session import Session
from tests.engine.sae_files import write_saelens


def test_sae_features_reads_the_config_file(tiny_sp_wrapper, tmp_path, monkeypatch, capsys):
    import explorer.commands.analyze as analyze

    write_saelens(tmp_path / "l1")
    config = tmp_path / "config.toml"
    config.write_text('[model]\nenable_sae = true\n\n[[sae]]\nlayer = 1\npath = "l1"\n', encoding="utf-8")
    # The tiny model stands in for the bundled one; everything else is the command as a user runs it.
    monkeypatch.setattr(analyze, "open_session", lambda args, cfg: Session(tiny_sp_wrapper, cfg, seed=0))
    code = main(["analyze", "--config", str(config), "--prompt", "once upon a time", "--mode", "sae_features",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["mode"] == "sae_features"
    assert data["extra"]["layer"] == 1 and data["extra"]["d_sae"] == 64
    assert "fvu" in data["checks"]
