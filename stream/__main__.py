"""`python -m stream` is the same as the `streamrec` command."""

import sys

from stream.cli import main

if __name__ == "__main__":  # spawned helper processes import this module without running the CLI
    sys.exit(main())
