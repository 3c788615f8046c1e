#!/usr/bin/env python3
"""Writes the hand-made seeds of the format-parsing fuzz targets into fuzz/seeds/<target>/.

Every seed is built here, field by field, from the specification the parser implements (the
comments name the fields); run it again to regenerate them (`python3 fuzz/seeds/make-seeds.py`).
The op-sequence targets (their inputs are `arbitrary` encodings) have no hand-made seeds: see
fuzz/seeds/README.md.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def checksummed(table, at=9):
    """An ACPI table whose bytes sum to 0 (ACPI 6.5 §5.2.6: checksum at offset 9)."""
    t = bytearray(table)
    t[at] = 0
    t[at] = (-sum(t)) & 0xFF
    return bytes(t)


def acpi_header(signature, length, revision):
    """The 36-byte System Description Table Header (ACPI 6.5 §5.2.6)."""
    return (signature + struct.pack("<IBB", length, revision, 0) + b"CONDUI" + b"FUZZSEED"
            + struct.pack("<I", 1) + b"CNDT" + struct.pack("<I", 1))


# --- DMAR (VT-d spec §8) -----------------------------------------------------------------------
def scope(kind, enum_id, bus, path):
    """Device Scope (§8.3.1): type, length, reserved, enumeration ID, start bus, path."""
    body = b"".join(bytes([d, f]) for d, f in path)
    return struct.pack("<BBHBB", kind, 6 + len(body), 0, enum_id, bus) + body


def structure(kind, body):
    return struct.pack("<HH", kind, 4 + len(body)) + body


def dmar(structures, flags=1):
    body = b"".join(structures)
    head = acpi_header(b"DMAR", 48 + len(body), 1) + bytes([38, flags]) + bytes(10)
    return checksummed(head + body)


def dmar_seeds():
    q35 = os.path.join(ROOT, "libs/dmar/tests/data/qemu-q35.bin")
    if os.path.exists(q35):
        os.makedirs(os.path.join(HERE, "dmar"), exist_ok=True)
        shutil.copy(q35, os.path.join(HERE, "dmar", "qemu-q35.bin"))
    drhd = structure(0, struct.pack("<BBHQ", 0, 0, 0, 0xFED90000)
                     + scope(1, 0, 0, [(2, 0)]) + scope(2, 0, 0, [(3, 0), (0, 0)]))
    drhd_all = structure(0, struct.pack("<BBHQ", 1, 0, 0, 0xFED91000)
                         + scope(3, 0, 0xF0, [(0x1F, 0)]) + scope(4, 0, 0, [(0x1F, 7)]))
    rmrr = structure(1, struct.pack("<HHQQ", 0, 0, 0x7E000000, 0x7E0FFFFF) + scope(1, 0, 0, [(0x14, 0)]))
    atsr = structure(2, struct.pack("<BBH", 0, 0, 0) + scope(2, 0, 0, [(3, 0)]))
    rhsa = structure(3, struct.pack("<IQI", 0, 0xFED90000, 0))
    andd = structure(4, bytes(3) + bytes([1]) + b"\\_SB.PCI0.I2C0\0")
    satc = structure(5, struct.pack("<BBH", 1, 0, 0) + scope(1, 0, 0, [(4, 0)]))
    write("dmar", "every-structure.bin", dmar([drhd, drhd_all, rmrr, atsr, rhsa, andd, satc]))
    write("dmar", "drhd-include-all.bin", dmar([drhd_all], flags=5))


# --- SPCR and DBG2 (Microsoft's SPCR rev. 4 and DBG2 specifications; GAS: ACPI 6.5 §5.2.3.2) ---
def gas(space, width, access, address):
    return struct.pack("<BBBBQ", space, width, 0, access, address)


def spcr(interface, registers, baud_code, pci=None, revision=2, precise=None):
    length = 88 if precise is not None else 80
    t = bytearray(acpi_header(b"SPCR", length, revision) + bytes(length - 36))
    t[36] = interface
    t[40:52] = registers
    t[58] = baud_code  # 3 9600, 4 19200, 6 57600, 7 115200, 0 as is
    t[60] = 1          # stop bits
    device, vendor, bus, dev, func, segment = pci or (0xFFFF, 0xFFFF, 0, 0, 0, 0)
    struct.pack_into("<HHBBB", t, 64, device, vendor, bus, dev, func)
    t[75] = segment
    if precise is not None:
        struct.pack_into("<I", t, 80, precise)
    return checksummed(t)


def dbg2(subtype, registers):
    # One Debug Device Information structure: revision, length, GAS count, namespace length and
    # offset, OEM data length and offset, port type, subtype, reserved, BaseAddressRegister
    # offset, AddressSize offset; then the GAS, the address size and the namespace string.
    namespace = b".\0"
    dev_len = 22 + 12 + 4 + len(namespace)
    dev = struct.pack("<BHBHHHHHHHHH", 0, dev_len, 1, len(namespace), 38, 0, 0, 0x8000, subtype, 0, 22, 34)
    dev += registers + struct.pack("<I", 8) + namespace
    head = acpi_header(b"DBG2", 44 + len(dev), 0) + struct.pack("<II", 44, 1)
    return checksummed(head + dev)


def uart_seeds():
    write("spcr_dbg2", "spcr-com1.bin", spcr(0x00, gas(1, 8, 1, 0x3F8), 7))
    write("spcr_dbg2", "spcr-pci-mmio32.bin",
          spcr(0x12, gas(0, 32, 3, 0xFEBD1000), 7, pci=(0x0002, 0x1B36, 0, 3, 0, 0)))
    write("spcr_dbg2", "spcr-rev4-precise-baud.bin",
          spcr(0x00, gas(1, 8, 1, 0x2F8), 0, revision=4, precise=1500000))
    write("spcr_dbg2", "dbg2-com2.bin", dbg2(0x0000, gas(1, 8, 1, 0x2F8)))


# --- ELF (System V gABI; x86-64 psABI) ---------------------------------------------------------
CODE = bytes([0xF4, 0xEB, 0xFD]) + bytes(13)  # hlt; jmp to the hlt; padding


def elf64(paddr=0x200000):
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, paddr, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, 120, paddr, paddr, len(CODE), 0x1000, 0x1000)
    return hdr + ph + CODE


def elf32(paddr=0x100000):
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    hdr = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, paddr, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    ph = struct.pack("<IIIIIIII", 1, 84, paddr, paddr, len(CODE), 0x1000, 5, 0x1000)
    return hdr + ph + CODE


# --- bzImage (Linux Documentation/arch/x86/boot.rst, protocol 2.15) and Multiboot 0.6.96 -------
def bzimage(kernel_len=64):
    setup = bytearray(5 * 512)
    setup[0x1F1] = 4                                   # setup_sects
    struct.pack_into("<I", setup, 0x1F4, kernel_len // 16)  # syssize
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)       # boot_flag
    setup[0x200] = 0xEB                                # jump
    setup[0x201] = 0x6A                                # header ends at 0x26C
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)       # version 2.15
    setup[0x211] = 0x01                                # loadflags: LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)   # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)     # kernel_alignment
    setup[0x234] = 1                                   # relocatable_kernel
    struct.pack_into("<H", setup, 0x236, 0x0003)       # xloadflags: KERNEL_64, CAN_BE_LOADED_ABOVE_4G
    struct.pack_into("<I", setup, 0x238, 2048)         # cmdline_size
    struct.pack_into("<Q", setup, 0x258, 0x1000000)    # pref_address
    struct.pack_into("<I", setup, 0x260, 0x100000)     # init_size
    return bytes(setup) + bytes(kernel_len)


def multiboot(with_address=True):
    flags = 0x00000003 | (0x10000 if with_address else 0)
    head = struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)
    if with_address:  # header_addr, load_addr, load_end_addr (0: to the end), bss_end_addr, entry
        head += struct.pack("<IIIII", 0x100000, 0x100000, 0, 0x102000, 0x100020)
    return head + bytes(32 - len(head) % 32) + CODE


def image_seeds():
    write("elf", "elf64-one-load.bin", elf64())
    write("elf", "elf32-i386-one-load.bin", elf32())
    write("bzimage_multiboot", "bzimage-2.15.bin", bzimage())
    write("bzimage_multiboot", "multiboot-address.bin", multiboot())
    write("bzimage_multiboot", "multiboot-elf.bin", multiboot(False) + elf32())


# --- conduit.toml (docs/configuration.md) with the bytes every image key reads as --------------
CONFIGS = {
    "long64-elf": (b'[hypervisor]\nname = "fuzz"\nlog_level = "debug"\non_idle = "exit"\n'
                   b'[[guest]]\nname = "g"\nmemory_mib = 4\nimage = "g.elf"\nformat = "elf"\n'
                   b'entry = "long64"\ntime_slice_us = 1000\n', elf64()),
    "real16-flat": (b'[[guest]]\nname = "r"\nmemory_mib = 2\nimage = "boot.bin"\nformat = "flat"\n'
                    b'entry = "real16"\nload_gpa = 0x7c00\nentry_gpa = 0x7c00\n', CODE),
    "devices": (b'[hypervisor]\nunsafe_no_iommu = true\nconsole = "com2"\nbaud = 57600\n'
                b'[[guest]]\nname = "a"\nmemory_mib = 16\nimage = "g"\n'
                b'[[guest.device]]\nfunction = "1234:11e8"\n'
                b'[[guest]]\nname = "b"\nmemory_mib = 8\nimage = "g"\n'
                b'[[guest.device]]\nfunction = "02:00.0"\nvf = 0\n', elf64()),
    "linux": (b'[[guest]]\nname = "linux"\nkind = "linux"\nkernel = "vmlinuz"\ninitrd = "initrd"\n'
              b'cmdline = "console=ttyS0"\nmemory_mib = 64\non_crash = "restart"\n', bzimage()),
    "multiboot": (b'[[guest]]\nname = "mb"\nkind = "multiboot"\nkernel = "kernel"\nmemory_mib = 8\n'
                  b'cmdline = "mb answer=42"\nmodules = [{ path = "kernel", cmdline = "module" }]\n',
                  multiboot()),
}


def config_seeds():
    for name, (text, image) in CONFIGS.items():
        write("config_toml", name + ".bin", text + b"\0" + image)


# --- The boot bundle's payload (postcard: varints, length-prefixed strings, enum indices) -------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pstr(s):
    return varint(len(s)) + s


def bundle_seed():
    segment = varint(0x200000) + varint(120) + varint(len(CODE)) + varint(0x1000)
    guest = (pstr(b"g") + varint(4) + varint(0) + varint(0x200000)   # name, memory_mib, Long64, entry
             + varint(1) + segment + pstr(b"g.elf") + varint(1000)    # segments, image, time slice
             + b"\0\0" + varint(0) + b"\0" + varint(0))               # no test hooks, devices, os; Stop
    config = (varint(2) + varint(2) + b"\0" + varint(0) + pstr(b"fuzz")  # Info, Bochs, no test, Exit
              + varint(1) + guest + b"\0" + varint(0) + varint(115200))  # guests, no_iommu, Auto, baud
    images = varint(1) + pstr(b"g.elf") + pstr(elf64())
    write("bundle", "one-guest.bin", config + images)


# --- Instructions behind MMIO exits (Intel SDM Vol. 2A §2.1): first byte seeds the registers ----
def mmio_seeds():
    insns = {
        "mov-eax-from-rdi": "8b07", "mov-rax-disp8": "488b4708", "store-r9d-sib": "44890c8f",
        "store-imm32": "c70778563412", "movzx-word": "0fb707", "store-ah": "886701",
        "opsize-store": "6689470c", "segment-rip-rel": "648b0500100000", "store-imm8": "c60001",
    }
    for name, hexbytes in insns.items():
        write("mmio_decode", name + ".bin", b"\x5a" + bytes.fromhex(hexbytes))


def shell_seeds():
    write("shell", "commands.txt", b"help\r\nvms\rept linux 0x1000\rvcpu hello64\nlog debug\r")
    write("shell", "editing.txt", b"ept lin\x7f\x7fnux 0xfee0_0000\x1b[A\x1bOB\x15quit\x08\x08\x08\x08pci\r\x03")
    write("shell", "long-line.txt", b"x" * 140 + b"\r" + b"restart 12345678901234567890\n")


if __name__ == "__main__":
    dmar_seeds()
    uart_seeds()
    image_seeds()
    config_seeds()
    bundle_seed()
    mmio_seeds()
    shell_seeds()
