# One file as big as it gets.
block = b"x" * (1024 * 1024)
written = 0
with open("big.bin", "wb") as f:
    while written < 4096:
        f.write(block)
        f.flush()
        written += 1
print(f"ESCAPED: wrote {written} MiB")
