"""Token Explorer: step a language model one token at a time and look inside it.

Layers (imports point one way): ``ui`` -> ``analyses`` -> ``engine`` -> ``config``/``errors``.
Only ``explorer.ui`` may import Textual or Rich.
"""

__version__ = "0.1.0"
