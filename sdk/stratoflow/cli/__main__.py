"""`python -m stratoflow.cli` is `strato`."""

from stratoflow.cli import main

main()
