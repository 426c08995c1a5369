"""Exit codes of the client commands besides 0 (done) and 1 (a failure, told in one line)."""

INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
