"""Process exit codes (DESIGN.md)."""

OK = 0
RUNTIME_FAILURE = 1
USAGE = 2
"""Bad command-line use or an invalid config."""
CONFIG = 78
"""EX_CONFIG: the model or its weights cannot be found or used."""
