"""``python -m trailhouse``: the same command as ``trailhouse``."""

from .cli import main

main()
