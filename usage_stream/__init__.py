"""The command line and developer tools: local broker, local stack, demo, billing jobs, bench."""
