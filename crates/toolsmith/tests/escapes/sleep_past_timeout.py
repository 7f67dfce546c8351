# Outlive the wall clock.
import time

time.sleep(600)
print("ESCAPED: slept past the timeout")
