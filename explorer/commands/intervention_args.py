"""Parse ``--steer`` / ``--clamp`` / ``--ablate`` specs into interventions (shared by commands).

Syntax (comma-separated key=value pairs):
    --steer  layer=L,vector=FILE|feature=N|diff=POS.txt:NEG.txt,alpha=A[,from=P]
    --clamp  layer=L,feature=N,value=V|scale=S[,strength=S][,from=P]
    --ablate head=L.H|mlp=L|neuron=L.N,how=zero|mean[,strength=S][,from=P]
:func:`parse_specs` checks the syntax and the files before the model loads;
:func:`build_interventions` turns them into data once the model is there.
"""

from __future__ import annotations

import math
from pathlib import Path

from explorer.errors import InputError

_KEYS = {
    "steer": {"layer", "vector", "feature", "diff", "alpha", "from"},
    "clamp": {"layer", "feature", "value", "scale", "strength", "from"},
    "ablate": {"head", "mlp", "neuron", "how", "strength", "from"},
}


def _pairs(kind: str, text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise InputError(f'--{kind} "{text}": "{part}" is not key=value.')
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in _KEYS[kind]:
            raise InputError(f'--{kind} "{text}": unknown key "{key}"; use {", ".join(sorted(_KEYS[kind]))}.')
        out[key] = value
    return out


def _int(kind: str, key: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--{kind} {key}={value} is not a whole number.") from None
    if n < 0:
        raise InputError(f"--{kind} {key}={value} must be ≥ 0.")
    return n


def _float(kind: str, key: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"--{kind} {key}={value} is not a number.") from None
    if not math.isfinite(x):
        raise InputError(f"--{kind} {key}={value} must be a finite number.")
    return x


def _dotted(kind: str, key: str, value: str) -> tuple[int, int]:
    parts = value.split(".")
    if len(parts) != 2:
        raise InputError(f"--{kind} {key}={value}: write it as LAYER.INDEX, e.g. {key}=3.5.")
    return _int(kind, key, parts[0]), _int(kind, key, parts[1])


def _file(kind: str, path: str) -> str:
    if not Path(path).expanduser().is_file():
        raise InputError(f"--{kind}: the file {path} does not exist.")
    return path


def parse_specs(steer: list[str], clamp: list[str], ablate: list[str], sae: str | None) -> list[dict]:
    """Checked specs (plain dicts), in command-line order per kind: steer, clamp, ablate."""
    specs: list[dict] = []
    for text in steer or []:
        d = _pairs("steer", text)
        sources = [k for k in ("vector", "feature", "diff") if k in d]
        if len(sources) != 1:
            raise InputError(f'--steer "{text}" needs exactly one of vector=FILE, feature=N or diff=POS.txt:NEG.txt.')
        if "layer" not in d:
            raise InputError(f'--steer "{text}" needs layer=L.')
        spec = {"kind": "steer", "layer": _int("steer", "layer", d["layer"]),
                "alpha": _float("steer", "alpha", d.get("alpha", "1")), "start": _int("steer", "from", d.get("from", "0"))}
        if "vector" in d:
            spec["vector"] = _file("steer", d["vector"])
        elif "feature" in d:
            if sae is None:
                raise InputError("--steer feature=N needs --sae PATH (the SAE whose decoder row is the direction).")
            spec["feature"] = _int("steer", "feature", d["feature"])
        else:
            if ":" not in d["diff"]:
                raise InputError(f"--steer diff={d['diff']}: write it as diff=POSITIVE.txt:NEGATIVE.txt.")
            pos, neg = d["diff"].split(":", 1)
            spec["diff"] = (_file("steer", pos), _file("steer", neg))
        specs.append(spec)
    for text in clamp or []:
        d = _pairs("clamp", text)
        if sae is None:
            raise InputError("--clamp needs --sae PATH (the SAE the feature belongs to).")
        if "layer" not in d or "feature" not in d or (("value" in d) == ("scale" in d)):
            raise InputError(f'--clamp "{text}" needs layer=L, feature=N and one of value=V or scale=S.')
        specs.append({"kind": "clamp", "layer": _int("clamp", "layer", d["layer"]),
                      "feature": _int("clamp", "feature", d["feature"]),
                      "value": _float("clamp", "value", d["value"]) if "value" in d else None,
                      "scale": _float("clamp", "scale", d["scale"]) if "scale" in d else None,
                      "strength": _float("clamp", "strength", d.get("strength", "1")),
                      "start": _int("clamp", "from", d.get("from", "0"))})
    for text in ablate or []:
        d = _pairs("ablate", text)
        targets = [k for k in ("head", "mlp", "neuron") if k in d]
        if len(targets) != 1:
            raise InputError(f'--ablate "{text}" needs exactly one of head=L.H, mlp=L or neuron=L.N.')
        target = targets[0]
        layer, index = (_int("ablate", "mlp", d["mlp"]), None) if target == "mlp" else _dotted("ablate", target, d[target])
        how = d.get("how", "zero")
        if how not in ("zero", "mean"):
            raise InputError(f"--ablate how={how} is unknown; use how=zero or how=mean.")
        specs.append({"kind": "ablate", "target": target, "layer": layer, "index": index, "how": how,
                      "strength": _float("ablate", "strength", d.get("strength", "1")),
                      "start": _int("ablate", "from", d.get("from", "0"))})
    return specs


def _reference_mean(wrapper, ids: list[int], target: str, layer: int, index: int | None) -> tuple[float, ...]:
    """Mean of the ablated component over every token of ``ids`` on the untouched model."""
    from explorer.engine.layers import attention_heads
    from explorer.engine.sae.hooks import capture

    site = {"head": "attn.hook_z", "mlp": "hook_mlp_out", "neuron": "mlp.hook_post"}[target]
    name = f"blocks.{layer}.{site}"
    acts = capture(wrapper, ids, [name])[name]  # [n, width]
    if target == "head":
        n_heads, head_dim = attention_heads(wrapper.model)
        if index >= n_heads:
            raise InputError(f"Head {index} is out of range; layer {layer} has heads 0..{n_heads - 1}.")
        return tuple(acts.view(acts.shape[0], n_heads, head_dim)[:, index].mean(0).tolist())
    if target == "neuron":
        if index >= acts.shape[-1]:
            raise InputError(f"Neuron {index} is out of range; the MLP has neurons 0..{acts.shape[-1] - 1}.")
        return (float(acts[:, index].mean()),)
    return tuple(acts.mean(0).tolist())


def build_interventions(wrapper, specs: list[dict], prompt_ids: list[int], sae_path: str | None,
                        sae_format: str | None = None) -> list:
    """Interventions from checked specs (loads vectors, builds differences of means, reads the SAE)."""
    from explorer.engine.interventions.spec import Ablate, Clamp, Steer
    from explorer.engine.interventions.vectors import diff_of_means, feature_direction, load_vector, read_prompt_lines
    from explorer.engine.layers import model_width

    items = []
    n_layers = wrapper.n_layers
    for spec in specs:
        if not 0 <= spec["layer"] < n_layers:
            raise InputError(f"Layer {spec['layer']} is out of range; the model has layers 0..{n_layers - 1}.")
        if spec["kind"] == "steer":
            d = model_width(wrapper.model)
            if "vector" in spec:
                v, source = load_vector(spec["vector"], spec["layer"], d), spec["vector"]
            elif "feature" in spec:
                from explorer.engine.interventions.hooks import default_sae_loader

                sae = default_sae_loader(sae_path, sae_format, spec["layer"])
                if getattr(sae, "W_dec", None) is None or sae.d_out != d:
                    raise InputError(f"{sae_path} does not write vectors of the model's width {d}.")
                v, source = feature_direction(sae, spec["feature"]), f"sae:{sae_path}#{spec['feature']}"
            else:
                pos, neg = spec["diff"]
                v, _meta = diff_of_means(wrapper, read_prompt_lines(pos), read_prompt_lines(neg), spec["layer"])
                source = f"diff:{pos}:{neg}@last token"
            items.append(Steer(spec["layer"], tuple(v.tolist()), spec["alpha"], start=spec["start"], source=source))
        elif spec["kind"] == "clamp":
            items.append(Clamp(spec["layer"], spec["feature"], str(Path(sae_path).expanduser().resolve()),
                               value=spec["value"], scale=spec["scale"], strength=spec["strength"],
                               start=spec["start"], sae_format=sae_format))
        else:
            mean, reference = None, ""
            if spec["how"] == "mean":
                mean = _reference_mean(wrapper, prompt_ids, spec["target"], spec["layer"], spec["index"])
                reference = f"mean over the {len(prompt_ids)} tokens of the prompt (untouched model)"
            items.append(Ablate(spec["target"], spec["layer"], spec["index"], how=spec["how"], mean=mean,
                                reference=reference, strength=spec["strength"], start=spec["start"]))
    return items
