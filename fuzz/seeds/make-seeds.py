#!/usr/bin/env python3
"""Writes the hand-made seeds of the format-parsing fuzz targets into fuzz/seeds/<target>/.

Every seed is built here, field by field, from the specification the parser implements (the
comments name the fields); run it again to regenerate them (`python3 fuzz/seeds/make-seeds.py`).
The op-sequence targets take the `arbitrary` crate's (1.x) encoding of their input types: the
`Arb` helpers below write it (see fuzz/seeds/README.md), and each seed is a described sequence.
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
    # An RMRR over the whole 64-bit space for 00:14.0 (the plan must call it malformed).
    whole = structure(1, struct.pack("<HHQQ", 0, 0, 0, 0xFFFFFFFFFFFFFFFF) + scope(1, 0, 0, [(0x14, 0)]))
    write("dmar", "rmrr-whole-space.bin", dmar([drhd_all, whole]))


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


# --- Op sequences in the `arbitrary` 1.x encoding --------------------------------------------------
class Arb:
    """Integers little-endian at their width, bool as one byte, an enum variant as a u32 `x` with
    `(x * variants) >> 32 == index`, every Vec element preceded by a byte 1 and the Vec ended by a
    byte 0, `Option` as a bool then the value."""

    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b += struct.pack("<B", v & 0xFF)
        return self

    def u16(self, v):
        self.b += struct.pack("<H", v & 0xFFFF)
        return self

    def u32(self, v):
        self.b += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def u64(self, v):
        self.b += struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
        return self

    def bool(self, v):
        return self.u8(1 if v else 0)

    def variant(self, index, count):
        return self.u32(((2 * index + 1) << 31) // count)

    def vec(self, items, put):
        for item in items:
            self.u8(1)
            put(self, item)
        return self.u8(0)

    def raw(self, data):
        self.b += data
        return self


def ops(seq, count, fields):
    """A Vec of enum values: (variant, args) pairs; `fields[variant]` writes the args."""
    a = Arb()
    a.vec(seq, lambda a, op: fields[op[0]](a.variant(op[0], count), *op[1:]))
    return a


def vuart_seeds():
    R, W, RX = 0, 1, 2
    f = {R: lambda a, r: a.u8(r), W: lambda a, r, v: a.u8(r).u8(v), RX: lambda a, b: a.u8(b)}
    fifo = [(W, 2, 0x07), (W, 1, 0x01), (W, 4, 0x08), (RX, ord("x")), (RX, ord("y")), (R, 2),
            (R, 0), (R, 5), (R, 0), (R, 2)]
    write("vuart", "fifo-receive-irq.bin", ops(fifo, 3, f).b)
    latch = [(W, 3, 0x80), (W, 0, 0x01), (W, 1, 0x00), (W, 3, 0x03), (R, 0), (W, 7, 0x5A), (R, 7)]
    write("vuart", "divisor-latch.bin", ops(latch, 3, f).b)
    loop = [(W, 4, 0x1F), (W, 1, 0x0F), (W, 0, ord("A")), (R, 6), (R, 2), (R, 0), (W, 4, 0x00),
            (R, 6), (RX, ord("z")), (RX, ord("w")), (R, 5)]
    write("vuart", "loopback-overrun.bin", ops(loop, 3, f).b)


def vioapic_seeds():
    RD, WR, REG, LINE, EOI = range(5)
    f = {RD: lambda a, n: a.u8(n), WR: lambda a, n, v: a.u8(n).u32(v),
         REG: lambda a, i, v: a.u8(i).u32(v), LINE: lambda a, p, on: a.u8(p).bool(on),
         EOI: lambda a, v: a.u8(v)}
    level = [(REG, 0x19, 1 << 24), (REG, 0x18, 0x8024), (LINE, 4, True), (LINE, 4, True),
             (EOI, 0x24), (LINE, 4, False), (EOI, 0x24), (RD, 1)]
    write("vioapic", "level-pin-eoi.bin", ops(level, 5, f).b)
    edge = [(REG, 0x12, 0x31), (LINE, 1, True), (LINE, 1, False), (REG, 0x12, 0x10031),
            (LINE, 1, True), (REG, 0x00, 0x0F000000), (REG, 0x01, 0), (WR, 4, 0x31)]
    write("vioapic", "edge-pin-mask.bin", ops(edge, 5, f).b)


def vlapic_seeds():
    READ, WRITE, MSR_R, MSR_W, BASE, TSCD, ACCEPT, INJECT, ACK, TIME = range(10)
    f = {READ: lambda a, n: a.u8(n).u16(0), WRITE: lambda a, n, v: a.u8(n).u16(0).u32(v),
         MSR_R: lambda a, n: a.u8(n), MSR_W: lambda a, n, v: a.u8(n).u64(v),
         BASE: lambda a, v: a.u64(v), TSCD: lambda a, v: a.u64(v),
         ACCEPT: lambda a, v, lvl: a.u8(v).bool(lvl), INJECT: lambda a: a, ACK: lambda a, v: a.u8(v),
         TIME: lambda a, d: a.u32(d)}
    # xAPIC: software enable, periodic timer on 0x31, inject, EOI; a level interrupt and its EOI.
    xapic = [(WRITE, 0x0F, 0x1FF), (WRITE, 0x32, 0x20031), (WRITE, 0x3E, 0xB),
             (WRITE, 0x38, 1000), (TIME, 1000000), (INJECT,), (WRITE, 0x0B, 0),
             (ACCEPT, 0x41, True), (INJECT,), (WRITE, 0x0B, 0), (WRITE, 0x08, 0x50),
             (ACCEPT, 0x45, False), (READ, 0x0A), (WRITE, 0x30, 0x4031), (READ, 0x28)]
    a = Arb().u8(0).bool(True)
    write("vlapic", "xapic-timer-eoi.bin", bytes(a.b) + bytes(ops(xapic, 10, f).b))
    # x2APIC: enable through IA32_APIC_BASE, self IPI and ICR, TSC-deadline timer.
    x2 = [(WRITE, 0x0F, 0x1FF), (BASE, 0xFEE00D00), (MSR_W, 0x3F, 0x55), (INJECT,),
          (MSR_W, 0x0B, 0), (MSR_W, 0x32, 0x40040), (TSCD, 5000), (TIME, 10000), (INJECT,),
          (MSR_W, 0x30, 0x0000000100000060), (MSR_R, 0x02), (BASE, 0xFEE00100)]
    a = Arb().u8(1).bool(False)
    write("vlapic", "x2apic-ipi-deadline.bin", bytes(a.b) + bytes(ops(x2, 10, f).b))


def vpci_seeds():
    cfg = bytearray(256)
    struct.pack_into("<HHHH", cfg, 0, 0x8086, 0x10CA, 0x0000, 0x0010)  # IDs, command, status: caps
    cfg[8:12] = bytes([0x01, 0x00, 0x00, 0x02])                        # revision, class 020000
    cfg[0x34] = 0x40
    cfg[0x3D] = 1                                                      # INTA
    cfg[0x40:0x44] = bytes([0x05, 0x50, 0x80, 0x00])                   # MSI, 64-bit
    cfg[0x50:0x54] = bytes([0x11, 0x70, 0x02, 0x00])                   # MSI-X, 3 entries
    struct.pack_into("<II", cfg, 0x54, 0x00000003, 0x00002003)          # table BAR 3 + 0, PBA + 0x2000
    cfg[0x70:0x74] = bytes([0x10, 0x00, 0x02, 0x00])                   # PCI Express v2 endpoint
    struct.pack_into("<I", cfg, 0x74, 0x10000000)                       # DevCap: FLR
    a = Arb()
    a.vec(cfg, lambda a, b: a.u8(b))
    bars = [(0, 1, False, 14, 0xFEBC0000), (3, 2, True, 14, 0xFEBF0000)]
    a.vec(bars, lambda a, s: a.u8(s[0]).u8(s[1]).bool(s[2]).u8(s[3]).u64(s[4]))
    READ, WRITE, CMD, BAR, TREAD, TWRITE, RESET = range(7)
    f = {READ: lambda a, o, n: a.u16(o).u8(n), WRITE: lambda a, o, n, v: a.u16(o).u8(n).u32(v),
         CMD: lambda a, v: a.u16(v), BAR: lambda a, i, v: a.u8(i).u32(v),
         TREAD: lambda a, o, n: a.u16(o).u8(n), TWRITE: lambda a, o, n, v: a.u16(o).u8(n).u64(v),
         RESET: lambda a: a}
    seq = [(BAR, 0, 0xC0000000), (BAR, 3, 0xC0010000), (BAR, 4, 0), (CMD, 0x0006),
           (WRITE, 0x52, 2, 0x8000), (TWRITE, 0, 8, 0xFEE00000), (TWRITE, 8, 4, 0x41),
           (TWRITE, 12, 4, 0), (TREAD, 0, 8), (WRITE, 0x42, 2, 0x0001), (BAR, 0, 0xC0100000),
           (READ, 0x10, 4), (WRITE, 0x79, 1, 0x80), (CMD, 0x0002), (RESET,)]
    write("vpci_config", "msix-bars-flr.bin", bytes(a.b) + bytes(ops(seq, 7, f).b))


def nvme_seeds():
    SUBMIT, POST, COMPLETE, POLL, RESET = range(5)
    bad = struct.pack("<IIII", 0, 0, 0x00010007, 0x00010005)  # SQ id 1, SQ head 7: beyond 4 entries
    f = {SUBMIT: lambda a, o: a.u8(o), POST: lambda a, s, r: a.u16(s).raw(r),
         COMPLETE: lambda a, d: a.u16(d), POLL: lambda a: a, RESET: lambda a: a}
    seq = [(SUBMIT, 6), (SUBMIT, 2), (SUBMIT, 6), (SUBMIT, 6), (COMPLETE, 1), (POLL,), (POLL,),
           (COMPLETE, 2), (COMPLETE, 3), (POLL,), (POLL,), (POLL,), (SUBMIT, 1), (POST, 0, bad),
           (POLL,), (RESET,), (POLL,)]
    a = Arb().u8(1).u8(4).u8(4)
    a.raw(ops(seq, 5, f).b)
    ident = struct.pack("<HH", 0x1B36, 0x1AF4) + b"deadbeef".ljust(20) + b"QEMU NVMe Ctrl".ljust(40)
    a.vec(ident, lambda a, b: a.u8(b))
    write("nvme", "queue-and-identify.bin", a.b)


def opt_u16(a, v):
    return a.bool(False) if v is None else a.bool(True).u16(v)


def irte_seeds():
    ALLOC, BLOCK, FREE, VALLOC, VAT, VFREE, RAW, BUILT = range(8)
    f = {ALLOC: lambda a, o: a.u8(o), BLOCK: lambda a, o, c: a.u8(o).u8(c),
         FREE: lambda a, o, i: a.u8(o).u16(i), VALLOC: lambda a, o: a.u8(o),
         VAT: lambda a, v, o: a.u8(v).u8(o), VFREE: lambda a, v, o: a.u8(v).u8(o),
         RAW: lambda a, r, i, lo, hi: a.u8(r).u16(i).u64(lo).u64(hi),
         BUILT: lambda a, r, i, v, d, lg, sid: opt_u16(a.u8(r).u16(i).u8(v).u32(d).bool(lg), sid)}
    # Guest 1 takes index 0 and vector 0x40 and programs a verified entry at CPU 1; guest 2 tries
    # the same index; the hypervisor takes a block of 4 and writes raw entries into it; frees.
    seq = [(ALLOC, 1), (VAT, 0x40, 1), (BUILT, 1, 0, 0x40, 1, False, 0x0100),
           (BUILT, 2, 0, 0x40, 2, False, 0x0200), (BUILT, 1, 0, 0x40, 1, False, None),
           (BLOCK, 0, 2), (RAW, 0, 4, 0x0000010000300001, 0), (RAW, 0, 5, 0x0000010000000401, 0),
           (FREE, 2, 0), (FREE, 1, 0), (VFREE, 0x40, 1), (VALLOC, 3)]
    a = Arb().bool(False)
    a.vec([0xEF, 0xF0], lambda a, v: a.u8(v))
    write("irte_authorize", "guest-and-hypervisor-entries.bin", bytes(a.b) + bytes(ops(seq, 8, f).b))


def control_abi_seeds():
    a = Arb()
    for r in (3 | (4 << 8) | (1 << 16) | (0x0100 << 32), 0x10, 0):   # ConfigRead guest 1, 01:00.0
        a.u64(r)
    a.u8(4).u8(2).u16(0).u16(0x0108).u64(0x04).u64(0x0006)            # ConfigWrite of Command
    a.u64(0).u64(0x1234)                                                 # reply: Ok
    wires = [(3, 0, 1, 1, 0xC0000000, 0xB0000000, 0x4000, 0xFEBC0000), (7, 2, 1, 0, 0xFEE00000,
             0x41, 0, 0), (2, 0, 0x7, 0, 0, 0, 0, 0)]
    a.vec(wires, lambda a, w: a.u8(w[0]).u32(w[1]).u32(w[2]).u32(w[3]).u64(w[4]).u64(w[5])
          .u64(w[6]).u64(w[7]))
    a.u32(3)
    a.u32(0).u32(1).u32(0).u32(0).u64(0xFEBC0000).u64(0x4000)          # BAR 0, 32-bit memory
    a.vec(b"BAR 5 is not implemented", lambda a, b: a.u8(b))
    a.u32(24)
    write("control_abi", "request-events-message.bin", a.b)


def igb_mbx_seeds():
    a = Arb()
    vfs = [(0, bytes.fromhex("525400123456"), False, [100, 200]), (1, bytes.fromhex("525400123457"), True, [])]
    a.vec(vfs, lambda a, v: a.u8(v[0]).raw(v[1]).bool(v[2]).vec(v[3], lambda a, x: a.u16(x)))
    a.bool(True).raw(bytes.fromhex("525400000001"))
    MSG, RAW, RESET = range(3)
    f = {MSG: lambda a, vf, i, info, rest: a.u8(vf).u8(i).u8(info).vec(rest, lambda a, w: a.u32(w)),
         RAW: lambda a, vf, ws: a.u8(vf).vec(ws, lambda a, w: a.u32(w)), RESET: lambda a, vf: a.u8(vf)}
    # VF_RESET, SET_VLAN add 100 and 300, SET_MAC to another and to VF 1's address, multicast, LPE.
    mac_words = lambda m: [struct.unpack("<I", m[0:4])[0], struct.unpack("<H", m[4:6])[0]]
    seq = [(MSG, 0, 1, 0, []), (MSG, 0, 4, 1, [100]), (MSG, 0, 4, 1, [300]),
           (MSG, 0, 2, 0, mac_words(bytes.fromhex("02aabbccddee"))),
           (MSG, 0, 2, 0, mac_words(bytes.fromhex("525400123457"))), (MSG, 0, 3, 2, [0x0123, 0x0456]),
           (MSG, 0, 5, 0, [1522]), (MSG, 1, 2, 0, []), (MSG, 1, 1, 0, []),
           (RAW, 1, [0x80000001]), (RESET, 0), (MSG, 0, 4, 1, [100])]
    a.raw(ops(seq, 3, f).b)
    write("igb_mbx", "reset-vlan-mac-multicast.bin", a.b)


if __name__ == "__main__":
    vuart_seeds()
    vioapic_seeds()
    vlapic_seeds()
    vpci_seeds()
    nvme_seeds()
    irte_seeds()
    control_abi_seeds()
    igb_mbx_seeds()
    dmar_seeds()
    uart_seeds()
    image_seeds()
    config_seeds()
    bundle_seed()
    mmio_seeds()
    shell_seeds()
