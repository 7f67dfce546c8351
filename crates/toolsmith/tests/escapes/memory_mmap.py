# Map and touch anonymous memory far past the limit.
import mmap

size = 4 * 1024 * 1024 * 1024
m = mmap.mmap(-1, size)
for offset in range(0, size, 4096):
    m[offset] = 1
print("ESCAPED: touched 4 GiB of mmap")
