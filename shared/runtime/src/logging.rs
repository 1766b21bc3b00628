//! Log output: text (coloured on a terminal only) or JSON with
//! `LOG_FORMAT=json`; the filter from `RUST_LOG`.

/// Installs the global subscriber once (later calls are no-ops, so tests
/// that start several services in one process can all call it).
pub fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let _ = if json {
        fmt().with_env_filter(filter).json().with_current_span(true).try_init()
    } else {
        // colours only on a terminal: not in `docker logs` or files
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        fmt().with_env_filter(filter).with_ansi(ansi).try_init()
    };
}

