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
}
