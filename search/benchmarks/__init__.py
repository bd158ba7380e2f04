"""Measuring search, kept apart from the product: speed and load at scale (`speed.py`, over the synthetic
corpus of `synthetic.py`), and relevance against labelled queries (`relevance.py`)."""
