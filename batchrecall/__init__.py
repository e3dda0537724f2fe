"""batchrecall."""
