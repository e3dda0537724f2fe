"""The run: the scheduler that owns every item from the moment it is read until its row is
written, the lanes and their rate limits, retries, and the wiring of a run end to end."""
