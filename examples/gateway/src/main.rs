//! `tower-sticky-gateway`: see the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    tower_sticky_gateway::main()
}
