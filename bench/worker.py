"""Run calls for another environment's process: ``python -m bench.worker OUT.jsonl < calls.jsonl``."""

import sys

from bench.harness import worker

if __name__ == "__main__":
    worker(sys.argv[1])
