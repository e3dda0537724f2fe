"""Find what to take back: the vendors' message history and exports, filtered to the operator's
query (who, when, where), written as a job file that `validate`, `plan` and `run` take as it is."""
