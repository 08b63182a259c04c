"""Terminal helpers of the management commands: input parsing, live progress, summaries."""
