"""videozoo: readable PyTorch reference implementations of the papers-kb learning path.

``videozoo.create(name, config="paper" | "tiny", num_classes=..., **overrides)`` builds a
model registered under its papers-kb paper key (e.g. ``"lin2019tsm"``) or alias (``"tsm"``);
``videozoo.list_models()`` lists them.
"""

from videozoo.registry import Reported, create, get_spec, list_models, make_config, register_check, register_model

__all__ = ["Reported", "create", "get_spec", "list_models", "make_config", "register_check", "register_model"]
__version__ = "0.1.0"
