"""One module per ``hsgprof`` subcommand; each defines ``register(subparsers)``.

:mod:`hsgprof.cli` imports every module here to build its parser, so whatever a command module
imports at top level is paid by ``hsgprof --help`` and by every other command. The pattern (checked
by ``tests/test_cli_imports.py``; the docs' "Writing a subcommand" page says the same):

1. **Top level: light imports only.** The standard library, :mod:`hsgprof.errors`,
   :mod:`hsgprof.results` (writers and :func:`~hsgprof.results.check_writable`; it imports pandas
   only inside functions), and the name lists a help text shows: :mod:`hsgprof.counting.choices`,
   :mod:`hsgprof.memory.choices`, :mod:`hsgprof.memory.cards`. Never torch, pandas, numpy, scipy,
   matplotlib, tqdm, ``hsgdet``, or an hsgprof module that imports them (``hsgprof.counting.api``,
   ``hsgprof.targets``, ``hsgprof.components``, ``hsgprof.adapters``, ...).
2. **Heavy imports inside the handler** (the ``func`` given to ``set_defaults``), after the cheap
   argument checks::

       def run(args):
           if args.format not in FORMATS:
               raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of ...")
           if args.out:
               check_writable(args.out)             # before any model is built or anything measured
           from hsgprof.counting import count      # heavy (torch): imported when the command runs
           ...

3. **A list of choices the help prints** that lives beside heavy code goes in a light module
   (``choices.py`` next to it) which the heavy module imports and checks at import time, so there
   is one list, not two (see :mod:`hsgprof.counting.choices`).
4. **Every output path** (``--out`` and any other file or folder the command writes) goes through
   :func:`hsgprof.results.check_writable` before the first stage or measurement, so a bad path fails
   in a second with one line and exit code 2, and nothing is half-written.
"""
