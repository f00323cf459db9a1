"""``python -m studio``: the command line, and the entry point the bundle freezes."""

from studio.main import main

if __name__ == "__main__":
    main()
