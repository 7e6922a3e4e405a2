"""`python -m fuzzer.cli`: the tcfuzz command."""

from fuzzer.cli import main

raise SystemExit(main())
