"""Independent references: papers' equations and layer tables restated as executable code.

Each module here restates one paper's definition (an equation, a figure, the layer table of
the paper or of the authors' release) directly from the paper, so that a model can be checked
against something that is not itself.  The rule that makes them independent, enforced by a
test: a module here imports ``torch`` and the standard library only, never ``videozoo``; it
takes the model's weights as plain tensors, never its modules.

Checks registered with ``evidence="independent-reference"`` (see
:func:`videozoo.registry.register_check`) compare a model with these functions, or with a
library (torchvision, timm, Hugging Face ...).
"""
