"""Executable statements of papers' equations, written from the papers' text.

Each module restates one paper's bridge (pooling, aggregation, consolidation, sampling) in the
plainest form, NumPy in float64 where it can, and imports nothing from videozoo: the model
files' ``reference`` checks compare their code with these statements, so a shared mistake
would need to be made twice, in two independent forms.
"""
