//! `ferry serve` (the job server) and `ferry admin` (users and tokens of its store): argument
//! parsing and signal handling; the server itself is the ferry-serve library.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Args)]
// The store argument is `ferry admin`'s, with the help `ferry serve` has always printed.
#[command(mut_arg("store", |a| a.help("Job store: sqlite://ferry.db (default) or postgres://user@host/db")))]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the real address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArg,
    /// File holding the master key (64 hex characters); created (mode 0600) when missing.
    /// Without it: FERRY_MASTER_KEY, else ./ferry-master.key.
    #[arg(long, value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,
    /// Lifetime of the access tokens login returns, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_ttl: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 256 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// The database profile imports (`peertube` jobs) write into: postgres://…. Requests never
    /// choose it.
    #[arg(long, env = "FERRY_TARGET_DB", hide_env_values = true)]
    pub target_db: Option<String>,
    /// Where imported media files go (a blobs locator: file:///dir or s3://bucket/prefix?…).
    #[arg(long, env = "FERRY_MEDIA_TARGET", hide_env_values = true)]
    pub media_target: Option<String>,
    /// How long a running job's lease lasts without renewal, in seconds (at least 3). Servers
    /// sharing a job store take over the jobs of a server that stopped renewing (killed,
    /// crashed, cut off) this long after its last renewal.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(3..))]
    pub job_lease: u64,
    /// Tests only: the login slow-down's first delay, in milliseconds (default 500).
    #[arg(long, hide = true, value_name = "MS")]
    pub login_delay_ms: Option<u64>,
    /// Tests only: the login slow-down's longest delay, in milliseconds (default 8000).
    #[arg(long, hide = true, value_name = "MS")]
    pub login_max_delay_ms: Option<u64>,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user of `ferry serve` (password from --password-stdin or FERRY_NEW_PASSWORD).
    CreateUser(CreateUserArgs),
    /// Revoke the access tokens of one user (--username) or of everyone.
    RevokeTokens(RevokeArgs),
}

#[derive(Args)]
pub struct StoreArg {
    /// The job store `ferry serve` uses.
    #[arg(
        long,
        env = "FERRY_STORE",
        default_value = "sqlite://ferry.db",
        value_name = "URL"
    )]
    pub store: String,
}

#[derive(Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub store: StoreArg,
    #[arg(long, value_name = "NAME")]
    pub username: String,
    /// Read the password from standard input (first line).
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
    pub role: RoleArg,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Only this user's tokens.
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RoleArg {
    Admin,
    User,
}

/// A future resolving on Ctrl-C or SIGTERM. The handlers are installed now, not when the
/// future is first polled, so a signal right after start-up is not lost.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
        eprintln!("ferry serve: stopping (cancelling running jobs)");
    }
}

pub async fn run(args: ServeArgs) -> i32 {
    let mut login_slow_down = ferry_serve::SlowDown::default();
    if let Some(ms) = args.login_delay_ms {
        login_slow_down.base_delay = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = args.login_max_delay_ms {
        login_slow_down.max_delay = std::time::Duration::from_millis(ms);
    }
    let config = ferry_serve::ServeConfig {
        listen: args.listen,
        store: args.store.store,
        master_key_file: args.master_key_file,
        token_ttl_s: args.token_ttl,
        body_limit: args.max_body,
        targets: ferry_serve::Targets {
            database: args.target_db,
            media: args.media_target,
        },
        login_slow_down,
        job_lease: std::time::Duration::from_secs(args.job_lease),
    };
    match ferry_serve::serve(config, stop_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let line = text.lines().next().unwrap_or_default().to_string();
        if line.is_empty() {
            return Err("standard input held no password".into());
        }
        return Ok(line);
    }
    std::env::var("FERRY_NEW_PASSWORD").map_err(|_| {
        "no password: pass --password-stdin (and pipe it in) or set FERRY_NEW_PASSWORD".into()
    })
}

pub async fn admin(command: AdminCommand) -> i32 {
    let result = match command {
        AdminCommand::CreateUser(a) => match password(a.password_stdin) {
            Err(e) => Err(e),
            Ok(pw) => {
                let role = match a.role {
                    RoleArg::Admin => ferry_serve::Role::Admin,
                    RoleArg::User => ferry_serve::Role::User,
                };
                ferry_serve::create_user(&a.store.store, &a.username, &pw, role)
                    .await
                    .map(|id| {
                        format!(
                            "Created user {} (id {id}, role {})",
                            a.username,
                            role.as_str()
                        )
                    })
                    .map_err(|e| e.to_string())
            }
        },
        AdminCommand::RevokeTokens(a) => {
            ferry_serve::revoke_tokens(&a.store.store, a.username.as_deref())
                .await
                .map(|n| format!("Revoked {n} token(s)"))
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(line) => {
            eprintln!("{line}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
