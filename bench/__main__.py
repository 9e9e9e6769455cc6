"""``python -m bench``: checks the interpreter (standard library only), then runs the command line."""

import sys

from bench.host import envs

if __name__ == "__main__":
    problem = envs.wrong_interpreter()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(1)
    from bench import cli

    sys.exit(cli.main())
