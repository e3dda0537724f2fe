"""Results out: the results file (writer, resume index), rows for outcomes, the summary and the
report."""
