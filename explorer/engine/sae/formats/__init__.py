"""SAE / transcoder file formats: one module per public format, each loading into a ``Sae``.

``loader.load_sae`` detects the format from the files and calls the right module; ``files``
reads safetensors / npz / JSON / YAML safely. Nothing here trains or runs a model. Never
imports Textual or Rich.
"""
