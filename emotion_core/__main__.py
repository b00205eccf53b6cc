"""`python -m emotion_core ...`: the command line (see `python -m emotion_core --help`)."""

from .cli import main

raise SystemExit(main())
