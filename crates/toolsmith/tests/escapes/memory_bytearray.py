# Grab memory with bytearrays until something stops us.
chunks = []
total = 0
while True:
    chunks.append(bytearray(64 * 1024 * 1024))
    total += 64
    if total >= 8192:
        print(f"ESCAPED: allocated {total} MiB")
        break
