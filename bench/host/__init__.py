"""Layer 1, the host: environments, processes and machine facts. Standard library only: ``python3 -m bench.setup``
and ``python -m bench`` use it before any environment or numpy exists."""
