"""Building blocks shared by two or more videozoo models."""
