"""Import scenic's model code (MTV, ViViT) in a JAX-only environment, for the reference-table scripts.

scenic's model modules import training, dataset and logging libraries (TensorFlow, CLU, scenic's
own ``train_lib``/``dataset_lib``) that building and running the Flax models does not need.  This
module installs an import hook that turns those packages into empty stand-ins, puts the scenic
checkout on ``sys.path`` and loads :mod:`videozoo.reference_tables` from this repository by path
(it needs only NumPy).  Nothing here touches the model code itself.

Use: ``reference_tables, scenic_root = scenic_import.setup(Path("/path/to/scenic"))``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

STAND_INS = ("scenic.train_lib", "scenic.dataset_lib", "clu", "tensorflow", "tensorflow_datasets", "orbax")


class _Anything:
    """Stands for any attribute of a stand-in package (callable, subclassable, usable in ``X | None``)."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        return _Anything()

    def __mro_entries__(self, bases):
        return (object,)

    def __or__(self, other):
        return object

    __ror__ = __or__


class _StandIn(types.ModuleType):
    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if any(name == s or name.startswith(s + ".") for s in STAND_INS):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StandIn(spec.name)

    def exec_module(self, module):
        pass


def setup(scenic: Path) -> types.ModuleType:
    """Install the stand-ins, put ``scenic`` (a checkout's root) on the path, return videozoo's reference_tables."""
    sys.meta_path.insert(0, _Finder())
    sys.path.insert(0, str(scenic))
    path = Path(__file__).resolve().parents[2] / "videozoo" / "reference_tables" / "__init__.py"
    spec = importlib.util.spec_from_file_location("videozoo_reference_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
