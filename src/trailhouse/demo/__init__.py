"""Demo data: the seeded event generator, the leaked-AccessKey story, and the demo loader.

A layer beside ``cli``: it may import ``service``, ``storage`` and ``model``; nothing there imports it.
The benchmarks and ``scripts/`` use the generator through ``demo.generate``.
"""
