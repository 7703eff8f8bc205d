"""Run the `hub` command as `python -m web`, e.g. for processes the hub starts itself."""

from web.cli import main

main()
