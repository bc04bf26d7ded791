"""Constants shared by the transfer engine tests."""

CHUNK = 65536
FAST_SCRYPT = {"n": 2 ** 10, "r": 8, "p": 1}
VM = {"name": "crypt-vm01", "uuid": "4211-aaaa", "moid": "vm-43"}
