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
    /// The audit chain's HMAC key (created at first start: 32 random bytes, mode 0600); default:
    /// `<data-dir>/audit.key`. Keep it off the database host's backups.
    #[arg(long, env = "BIOVIEWER_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<PathBuf>,
    /// Where the audit chain's head is appended every 1000 records and every 5 minutes (`at seq
    /// hash`), and what `audit verify` checks; default: `<data-dir>/audit-checkpoints.log`. Best
    /// on another disk or host.
    #[arg(long, env = "BIOVIEWER_AUDIT_CHECKPOINT_FILE", global = true)]
    pub audit_checkpoint_file: Option<PathBuf>,
}

impl CommonSettings {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("bioviewer.db").display()))
    }

    pub fn audit_key_file(&self) -> PathBuf {
        self.audit_key_file.clone().unwrap_or_else(|| self.data_dir.join("audit.key"))
    }

    pub fn audit_checkpoint_file(&self) -> PathBuf {
        self.audit_checkpoint_file.clone().unwrap_or_else(|| self.data_dir.join("audit-checkpoints.log"))
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
    /// Computed histories kept in memory (least recently used goes first); 0 recomputes the
    /// history on every page. A ten-year history is a few megabytes.
    #[arg(long, env = "BIOVIEWER_HISTORY_CACHE", default_value_t = crate::history::DEFAULT_CACHED_HISTORIES)]
    pub history_cache: usize,
    /// Mark cookies `Secure` and send HSTS: set when users reach Bioviewer over HTTPS (directly
    /// or through a TLS-terminating proxy).
    #[arg(long, env = "BIOVIEWER_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Reverse proxies (addresses, comma-separated) whose `X-Forwarded-For` names the client's
    /// address; from any other peer the header is ignored.
    #[arg(long = "trusted-proxy", env = "BIOVIEWER_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Seconds a client has to send a request's headers (and a kept-alive connection may stay
    /// idle) before its connection is closed.
    #[arg(long, env = "BIOVIEWER_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
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
    #[command(flatten)]
    pub dmp: DmpArgs,
    /// Serve a DMP simulator for the documents of this folder, embedded (on a loopback port of
    /// its own, reached over real HTTP), and connect to it.
    #[arg(long, env = "BIOVIEWER_DMP_SIMULATOR")]
    pub dmp_simulator: Option<PathBuf>,
    /// The time zone every time is shown in (an IANA name): the interface writes times in it,
    /// labelled, whatever offset the server or a document uses.
    #[arg(long, env = "BIOVIEWER_TIME_ZONE", default_value = "Europe/Paris")]
    pub time_zone: crate::local_time::LocalZone,
    /// Start even though the audit trail does not verify (after looking into it): the server
    /// logs the break as an error and raises an alarm on the administration page.
    #[arg(long, env = "BIOVIEWER_ALLOW_BROKEN_AUDIT")]
    pub allow_broken_audit: bool,
}

/// The DMP connection: where, and the structure's identity and keys.
#[derive(Debug, Clone, Args)]
pub struct DmpArgs {
    /// Base URL of the DMP web services (`{url}/registry`, `{url}/repository`).
    #[arg(long, env = "BIOVIEWER_DMP_ENDPOINT")]
    pub dmp_endpoint: Option<String>,
    /// The structure's signing key (PEM) for the VIHF.
    #[arg(long, env = "BIOVIEWER_DMP_STRUCTURE_KEY", default_value = "data/structure.key.pem")]
    pub dmp_structure_key: PathBuf,
    /// The structure's certificate (PEM), put in the VIHF's KeyInfo.
    #[arg(long, env = "BIOVIEWER_DMP_STRUCTURE_CERT", default_value = "data/structure.cert.pem")]
    pub dmp_structure_cert: PathBuf,
    /// TLS client certificate chain and key (PEM) for mutual TLS with the DMP.
    #[arg(long, env = "BIOVIEWER_DMP_CLIENT_CERT")]
    pub dmp_client_cert: Option<PathBuf>,
    #[arg(long, env = "BIOVIEWER_DMP_CLIENT_KEY")]
    pub dmp_client_key: Option<PathBuf>,
    /// The authorities (PEM) the DMP's server certificate must chain to (IGC-Santé); default:
    /// the web's usual roots.
    #[arg(long, env = "BIOVIEWER_DMP_CA_CERT")]
    pub dmp_ca_cert: Option<PathBuf>,
    #[arg(long, env = "BIOVIEWER_DMP_STRUCTURE_ID", default_value = "1010000000011")]
    pub dmp_structure_id: String,
    #[arg(long, env = "BIOVIEWER_DMP_ACTIVITY_SECTOR", default_value = "SA07^1.2.250.1.71.4.2.4")]
    pub dmp_activity_sector: String,
    #[arg(long, env = "BIOVIEWER_DMP_HOMOLOGATION_ID", default_value = "BIOVIEWER-DEMO")]
    pub dmp_homologation_id: String,
}

impl DmpArgs {
    /// The client for `endpoint` with these keys.
    pub fn client(&self, endpoint: String) -> Result<crate::dmp::client::DmpClient, String> {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let key = String::from_utf8(read(&self.dmp_structure_key)?).map_err(|_| "the structure key is not PEM text".to_string())?;
        let cert =
            String::from_utf8(read(&self.dmp_structure_cert)?).map_err(|_| "the structure certificate is not PEM text".to_string())?;
        let key = std::sync::Arc::new(crate::dmp::vihf::StructureKey::from_pem(&key, &cert).map_err(|e| e.to_string())?);
        let client_cert = match (&self.dmp_client_cert, &self.dmp_client_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => return Err("--dmp-client-cert and --dmp-client-key go together".into()),
        };
        let settings = crate::dmp::client::DmpSettings {
            endpoint,
            structure_id: self.dmp_structure_id.clone(),
            activity_sector: self.dmp_activity_sector.clone(),
            homologation_id: self.dmp_homologation_id.clone(),
            timeout: std::time::Duration::from_secs(30),
            attempts: 3,
            backoff: std::time::Duration::from_millis(500),
        };
        let roots = self.dmp_ca_cert.as_ref().map(read).transpose()?;
        crate::dmp::client::DmpClient::new(settings, key, client_cert.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())), roots.as_deref())
            .map_err(|e| e.to_string())
    }
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
            trusted_proxies: self.trusted_proxies.clone(),
            ..Default::default()
        }
    }
}
