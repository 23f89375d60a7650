//! Settings, from flags or `BIOVIEWER_*` environment variables (`bioviewer --help` lists them).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Settings every command shares.
#[derive(Debug, Clone, Args)]
pub struct CommonSettings {
    /// Folder for Bioviewer's own files (the SQLite database by default).
    #[arg(long, env = "BIOVIEWER_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// Database URL; default: `sqlite://<data-dir>/bioviewer.db`.
    #[arg(long, env = "BIOVIEWER_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Log filter (`error`, `warn`, `info`, `debug`, or per module: `bioviewer=debug,info`).
    #[arg(long, env = "BIOVIEWER_LOG", default_value = "info", global = true)]
    pub log_level: String,
}

impl CommonSettings {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("bioviewer.db").display()))
    }
}

/// Settings of the web server.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address and port to listen on.
    #[arg(long, env = "BIOVIEWER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Folder with the built site (`pkg/` with the wasm bundle and stylesheet, and public files).
    #[arg(long, env = "BIOVIEWER_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Transcoding table of laboratories' local codes (TSV); default: the one shipped.
    #[arg(long, env = "BIOVIEWER_TRANSCODING")]
    pub transcoding: Option<PathBuf>,
    /// Mark cookies `Secure` and send HSTS: set when users reach Bioviewer over HTTPS (directly
    /// or through a TLS-terminating proxy).
    #[arg(long, env = "BIOVIEWER_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// A session unused this many minutes ends.
    #[arg(long, env = "BIOVIEWER_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: u64,
    /// A session ends this many hours after sign-in.
    #[arg(long, env = "BIOVIEWER_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u64,
}

impl ServeSettings {
    pub fn access_settings(&self) -> crate::access::AccessSettings {
        crate::access::AccessSettings {
            idle_timeout: std::time::Duration::from_secs(self.session_idle_minutes.max(1) * 60),
            absolute_timeout: std::time::Duration::from_secs(self.session_max_hours.max(1) * 3600),
            secure_cookies: self.secure_cookies,
            ..Default::default()
        }
    }
}
