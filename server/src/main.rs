//! The `bioviewer` binary: all behaviour lives in the library (`bioviewer::cli`).

fn main() -> std::process::ExitCode {
    bioviewer::cli::main()
}
