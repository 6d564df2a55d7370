"""papers-kb: a paper knowledge base and static site for video understanding research."""

__version__ = "0.1.0"
