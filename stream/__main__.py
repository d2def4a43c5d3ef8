"""`python -m stream` is the same as the `streamrec` command."""

from stream.cli import console_main

if __name__ == "__main__":  # spawned helper processes import this module without running the CLI
    console_main()
