#!/usr/bin/env python3
"""Runs a command and writes its CPU time (user + system, every thread, from getrusage)
in seconds to a file: `rusage.py OUT COMMAND ARGS...`. Exits with the command's status."""
import resource
import subprocess
import sys

status = subprocess.run(sys.argv[2:]).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_utime + usage.ru_stime:.2f}\n")
sys.exit(status)
