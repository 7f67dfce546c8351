# Keep as many processes alive at once as possible: the process limit must cap them.
import os
import time

alive = 0
try:
    while alive < 1000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        alive += 1
except OSError as err:
    print(f"fork refused after {alive} children: {err}")
if alive >= 64:
    print(f"ESCAPED: {alive} processes at once")
