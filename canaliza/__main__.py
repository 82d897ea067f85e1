"""``python -m canaliza …`` is the ``canaliza`` command."""

from canaliza.launcher import main

main()
