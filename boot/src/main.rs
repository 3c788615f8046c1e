//! `conduit-boot`: builds, runs and tests Conduit's UEFI disk image. See [`conduit_boot`].

fn main() -> std::process::ExitCode {
    conduit_boot::main()
}
