//! `bench64`: measures exit path lengths with RDTSC (under Bochs the TSC counts emulated
//! instructions, so the numbers are instruction counts): CPUID leaf 0 and `in al, dx` from the
//! LSR (both exit), against a non-exiting baseline. Each window is
//! `lfence; rdtsc; lfence; save; 2 set-up instructions; 1 measured instruction; lfence; rdtsc;
//! lfence`, so windows differ only in the measured instruction. Prints
//! `bench: cpuid_exit_instr=N io_exit_instr=M` (minimum over 1000 runs, minus the baseline's).
//!
//! Then a guest configuration read of 00:01.0's Vendor/Device ID (the function the bench
//! configuration assigns; an empty topology answers all ones through the same path):
//! `config_read_instr` is CONFIG_ADDRESS written and CONFIG_DATA read (two exits: the latch,
//! then exit → control task → reply → resume), against a baseline with the same instructions
//! minus the two port accesses; `config_data_instr` is the CONFIG_DATA read alone with the
//! address already latched. Prints `bench: config_read_instr=N config_data_instr=M`.
#![no_std]
#![no_main]

use conduit_guest::{exit, println};

conduit_guest::entry!(main);

const RUNS: usize = 1000;

unsafe extern "C" {
    fn window_baseline() -> u64;
    fn window_cpuid() -> u64;
    fn window_io() -> u64;
    fn window_config_baseline() -> u64;
    fn window_config() -> u64;
    fn window_config_data() -> u64;
}

/// CONFIG_ADDRESS of 00:01.0, register 0.
const CONFIG_ADDRESS: u32 = 0x8000_0800;

/// One window: `$setup` (two instructions) and `$op` between two fenced RDTSCs; returns the delta.
macro_rules! window {
    ($name:literal, $setup1:literal, $setup2:literal, $op:literal) => {
        concat!(
            ".global ",
            $name,
            "\n",
            $name,
            ":\n",
            "push rbx\n",
            "lfence\n",
            "rdtsc\n",
            "lfence\n",
            "mov r8d, eax\n",
            "mov r9d, edx\n",
            $setup1,
            "\n",
            $setup2,
            "\n",
            $op,
            "\n",
            "lfence\n",
            "rdtsc\n",
            "lfence\n",
            "shl rdx, 32\n",
            "or rax, rdx\n",
            "shl r9, 32\n",
            "or r8, r9\n",
            "sub rax, r8\n",
            "pop rbx\n",
            "ret\n",
        )
    };
}

core::arch::global_asm!(
    window!(
        "window_baseline",
        "xor eax, eax",
        "xor ecx, ecx",
        "add eax, ecx"
    ),
    window!("window_cpuid", "xor eax, eax", "xor ecx, ecx", "cpuid"),
    window!("window_io", "mov edx, 0x3fd", "xor ecx, ecx", "in al, dx"),
    window!(
        "window_config_baseline",
        "mov eax, 0x80000800",
        "mov edx, 0xcf8",
        "add eax, ecx\nmov dl, 0xfc\nadd eax, ecx"
    ),
    window!(
        "window_config",
        "mov eax, 0x80000800",
        "mov edx, 0xcf8",
        "out dx, eax\nmov dl, 0xfc\nin eax, dx"
    ),
    window!(
        "window_config_data",
        "mov edx, 0xcfc",
        "xor ecx, ecx",
        "in eax, dx"
    ),
);

fn min_of(window: unsafe extern "C" fn() -> u64) -> u64 {
    (0..RUNS)
        // SAFETY: the windows only use registers (RBX saved) and exit to the hypervisor.
        .map(|_| unsafe { window() })
        .min()
        .unwrap_or(0)
}

fn main() -> ! {
    println!("hello from bench64");
    let baseline = min_of(window_baseline);
    let cpuid = min_of(window_cpuid);
    let io = min_of(window_io);
    println!(
        "bench: cpuid_exit_instr={} io_exit_instr={}",
        cpuid.saturating_sub(baseline),
        io.saturating_sub(baseline)
    );
    let id = {
        conduit_guest::outl(0xcf8, CONFIG_ADDRESS);
        conduit_guest::inl(0xcfc)
    };
    println!(
        "config read of 00:01.0: {:04x}:{:04x}",
        id & 0xffff,
        id >> 16
    );
    let config_baseline = min_of(window_config_baseline);
    let config = min_of(window_config);
    conduit_guest::outl(0xcf8, CONFIG_ADDRESS);
    let data = min_of(window_config_data);
    println!(
        "bench: config_read_instr={} config_data_instr={}",
        config.saturating_sub(config_baseline),
        data.saturating_sub(baseline)
    );
    exit(0)
}
