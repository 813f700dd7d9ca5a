"""exchange-kernel: the functional core (fold, ledger, reconcile) and its shell."""
