"""The bundle's console executable: ``studio ...`` (and the child processes of long jobs)."""

from studio.main import main

main()
