"""One file per paper; importing this package registers every model.

Each model file is imported by name below; a helper adding a model adds its line.
"""

import importlib

_MODEL_FILES = [
    # Stage 1
    "two_stream", "tsn", "c3d", "i3d", "tsm", "tea", "tdn",
    # Stage 2
    "transformer", "vit", "vivit", "swin", "video_swin", "timesformer", "mtv", "uniformer", "uniformerv2",
]

for _name in _MODEL_FILES:
    try:
        importlib.import_module(f"videozoo.models.{_name}")
    except ModuleNotFoundError as exc:  # a model file not written yet
        if exc.name != f"videozoo.models.{_name}":
            raise
