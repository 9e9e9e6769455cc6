"""autodiff-bench: the harness and the command line (``python -m bench``). Imports no framework."""
