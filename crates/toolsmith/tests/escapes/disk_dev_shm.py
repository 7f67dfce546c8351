# Fill /dev/shm (memory on the host if it were shared).
block = b"x" * (1024 * 1024)
written = 0
with open("/dev/shm/fill", "wb") as f:
    while written < 4096:
        f.write(block)
        f.flush()
        written += 1
print(f"ESCAPED: wrote {written} MiB to /dev/shm")
