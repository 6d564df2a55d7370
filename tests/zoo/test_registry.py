"""Registered variants (timm-style names) of a paper's model."""

from __future__ import annotations

import pytest
import torch

from videozoo import registry
from videozoo.registry import create, get_spec, list_names, make_config, register_variant
from videozoo.verify import model_input


@pytest.fixture
def scratch_variant():
    """Register a throw-away variant of TSM and remove it afterwards."""
    names = []

    def make(name, **kw):
        v = register_variant(name, of="lin2019tsm", **kw)
        names.append(name)
        return v

    yield make
    for n in names:
        registry._VARIANTS.pop(n, None)


def test_variant_overrides_apply_to_both_configs_and_paper_overrides_to_paper_only(scratch_variant):
    base_paper, base_tiny = make_config("tsm", "paper"), make_config("tsm", "tiny")
    assert {base_paper.num_classes, base_tiny.num_classes}.isdisjoint({7, 9})
    scratch_variant("tsm_test_variant", overrides={"num_classes": 7}, paper_overrides={"num_classes": 9})
    assert make_config("tsm_test_variant", "paper").num_classes == 9
    assert make_config("tsm_test_variant", "tiny").num_classes == 7
    assert (base_paper.num_classes, base_tiny.num_classes) == (make_config("tsm", "paper").num_classes,
                                                               make_config("tsm", "tiny").num_classes)
    spec = get_spec("tsm_test_variant")
    assert spec.key == "lin2019tsm" and spec.alias == "tsm_test_variant" and spec.variant is not None
    assert get_spec("tsm").variant is None
    assert "tsm_test_variant" in list_names() and "tsm" in list_names()
    model = create("tsm_test_variant", "tiny").eval()
    with torch.no_grad():
        out = model(*model_input(spec, make_config("tsm_test_variant", "tiny"), 1))
    assert out.shape == (1, 7)


def test_variant_registration_errors(scratch_variant):
    with pytest.raises(KeyError, match="not registered"):
        register_variant("x_variant", of="no_such_paper")
    with pytest.raises(ValueError, match="no field"):
        register_variant("tsm_bad_field", of="lin2019tsm", overrides={"no_such_field": 1})
    with pytest.raises(ValueError, match="twice"):
        register_variant("tsm", of="lin2019tsm")
