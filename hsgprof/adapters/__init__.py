"""Thin adapters that tell the toolkit about a specific model family (names, inputs, losses).

The only place hsgprof imports hsgdet.
"""
