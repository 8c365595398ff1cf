"""`python -m zsar`: the same command line as `zsar`."""

from zsar.cli import main

if __name__ == "__main__":
    main()
