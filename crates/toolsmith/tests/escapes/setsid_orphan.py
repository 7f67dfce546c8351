# A double-forked daemon in its own session, meant to outlive the run.
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(1)
    os._exit(0)
print("parent exits, leaving a daemon behind")
