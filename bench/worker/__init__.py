"""Layer 3, the worker: what runs inside a backend's own process (``python -m bench.worker``) — training, the timer,
the counter, calibration kernels, the hand-written loops, the memory floor. The only part besides ``backends/``
that imports a framework."""
