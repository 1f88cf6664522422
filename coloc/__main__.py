"""``python -m coloc``: the command line of :mod:`coloc.cli`."""

from coloc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
