//! One TLS crypto provider (ring) for the whole process; see TOOLCHAIN.md for why.

/// Installs ring as the process-wide rustls provider; harmless when already installed.
pub fn install() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
