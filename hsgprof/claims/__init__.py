"""Claims and verdicts: the HSG-Det ledger (seed data, its claims file ``hsgdet.yaml``, the theory claims),
verdict rules, and claims files for any model (``schema``, judged by ``verify``)."""
