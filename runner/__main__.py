"""`python -m runner`: the command line for people."""
from runner.cli import main

raise SystemExit(main())
