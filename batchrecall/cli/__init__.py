"""The commands: argument parsing, the confirmation gate, exit codes, and what a person sees."""
