# A gibibyte of output.
import sys

block = b"y" * (1024 * 1024)
for _ in range(1024):
    sys.stdout.buffer.write(block)
sys.stdout.flush()
