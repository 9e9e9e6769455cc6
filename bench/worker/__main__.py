"""``python -m bench.worker OUT.jsonl < calls.jsonl``: answer a caller's calls in this environment."""

import os
import sys

from bench.worker.serve import serve

if __name__ == "__main__":
    serve(sys.argv[1])  # every answer written and flushed
    sys.stdout.flush()
    sys.stderr.flush()
    # without the frameworks' teardown at exit (TensorFlow's about 0.9 s a process, torch's 0.35 s), which the caller
    # would wait for; what a framework started is stopped with the worker's process group (procs.stop)
    os._exit(0)
