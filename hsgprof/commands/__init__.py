"""One module per ``hsgprof`` subcommand; each defines ``register(subparsers)``."""
