# New namespaces, mounts, and other kernel surface (bpf, io_uring, keyrings).
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
for name, flags in [("user", CLONE_NEWUSER), ("mount", CLONE_NEWNS), ("net", CLONE_NEWNET)]:
    if libc.unshare(flags) == 0:
        print(f"ESCAPED: unshare({name})")
    else:
        print(f"blocked: unshare({name}): errno {ctypes.get_errno()}")
if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0:
    print("ESCAPED: mounted a tmpfs")
else:
    print(f"blocked: mount: errno {ctypes.get_errno()}")
SYS_bpf, SYS_io_uring_setup, SYS_keyctl, SYS_setns = 321, 425, 250, 308
params = ctypes.create_string_buffer(120)
for name, nr, args in [("bpf", SYS_bpf, (0, None, 0)), ("io_uring_setup", SYS_io_uring_setup, (8, params)),
                       ("keyctl", SYS_keyctl, (0, -1, 0)), ("setns", SYS_setns, (0, 0))]:
    rc = libc.syscall(nr, *args)
    errno = ctypes.get_errno()
    if rc >= 0:
        print(f"ESCAPED: {name} returned {rc}")
    else:
        print(f"blocked: {name}: errno {errno}")
