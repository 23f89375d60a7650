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
    /// OpenID Connect issuer for professionals (Pro Santé Connect); off when absent.
    #[arg(long, env = "BIOVIEWER_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "BIOVIEWER_OIDC_CLIENT_ID", default_value = "bioviewer")]
    pub oidc_client_id: String,
    #[arg(long, env = "BIOVIEWER_OIDC_CLIENT_SECRET", hide_env_values = true, default_value = "")]
    pub oidc_client_secret: String,
    /// Our callback as registered with the provider, e.g. `https://bioviewer.example/auth/oidc/callback`.
    #[arg(long, env = "BIOVIEWER_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    #[arg(long, env = "BIOVIEWER_OIDC_SCOPES", default_value = "openid profile scope_all")]
    pub oidc_scopes: String,
    /// Required authentication levels, space-separated (e.g. `eidas1`).
    #[arg(long, env = "BIOVIEWER_OIDC_ACR_VALUES")]
    pub oidc_acr_values: Option<String>,
}

impl ServeSettings {
    /// The OpenID Connect settings, when an issuer is configured.
    pub fn oidc_settings(&self) -> Result<Option<crate::oidc::OidcSettings>, String> {
        let Some(issuer) = &self.oidc_issuer else { return Ok(None) };
        let redirect_url = self.oidc_redirect_url.clone().ok_or("--oidc-redirect-url is required with --oidc-issuer")?;
        Ok(Some(crate::oidc::OidcSettings {
            issuer: issuer.clone(),
            client_id: self.oidc_client_id.clone(),
            client_secret: self.oidc_client_secret.clone(),
            redirect_url,
            scopes: self.oidc_scopes.clone(),
            acr_values: self.oidc_acr_values.clone().filter(|a| !a.trim().is_empty()),
        }))
    }

    pub fn access_settings(&self) -> crate::access::AccessSettings {
        crate::access::AccessSettings {
            idle_timeout: std::time::Duration::from_secs(self.session_idle_minutes.max(1) * 60),
            absolute_timeout: std::time::Duration::from_secs(self.session_max_hours.max(1) * 3600),
            secure_cookies: self.secure_cookies,
            ..Default::default()
        }
    }
}
