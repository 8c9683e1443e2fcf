//! The `tcplife` binary: all the work is in the library.

fn main() -> std::process::ExitCode {
    tcplife::cli::main()
}
