"""``python -m trailhouse.cli``, as the tests and benchmarks start the command."""

from . import main

main()
