"""``python -m bench.worker OUT.jsonl < calls.jsonl``: answer a caller's calls in this environment."""

import sys

from bench.worker.serve import serve

if __name__ == "__main__":
    serve(sys.argv[1])
