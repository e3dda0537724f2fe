"""Job files in: the streaming reader and its row schema, duplicate detection and batching, and
the plan shown before a run. Plain synchronous code."""
