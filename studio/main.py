"""The installed entry points: ``studio`` (the CLI, which opens the studio when given no command)
and ``textbook-studio`` (the studio itself). The only module that joins the CLI and the GUI."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl+C while the studio's modules load: before click listens
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def _main() -> None:
    import multiprocessing

    multiprocessing.freeze_support()
    from studio.cli import cli, run_cli
    from studio.ui.commands import register

    register(cli)
    if len(sys.argv) == 1:
        sys.argv.append("gui")
    run_cli(cli)


def gui() -> None:
    sys.argv[1:] = ["gui", *sys.argv[1:]]
    main()
