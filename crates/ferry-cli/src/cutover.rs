//! `ferry cutover check|sync`: the flags of `ferry::cutover` (a spec file, or a built-in
//! profile's preset from flags), the checklist on stdout, and the JSON, JUnit and HTML files.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry::Error;
use ferry::cutover::{self, CutoverSpec, Outcome, Selection};

#[derive(Subcommand)]
pub enum CutoverCommand {
    /// Run the go/no-go checklist: exit 0 GO, 1 NO-GO, 2 bad spec or unreachable service.
    Check(CutoverArgs),
    /// The final incremental pass (rows, then files), timed, then the checklist.
    Sync(CutoverArgs),
}

#[derive(Args)]
pub struct CutoverArgs {
    /// The cutover, as TOML: [source]/[target] database, media, url; [job]; [vars]; [[check]].
    #[arg(long, value_name = "FILE", required_unless_present = "profile")]
    pub spec: Option<PathBuf>,
    /// A built-in profile's preset instead of a spec file (peertube).
    #[arg(long, conflicts_with = "spec", requires_all = ["source", "target"])]
    pub profile: Option<String>,
    /// The preset's source database.
    #[arg(long, value_name = "URL", requires = "profile")]
    pub source: Option<String>,
    /// The preset's target database.
    #[arg(long, value_name = "URL", requires = "profile")]
    pub target: Option<String>,
    /// The preset's source files (a storage locator).
    #[arg(long, value_name = "LOCATOR", requires = "profile")]
    pub media_from: Option<String>,
    /// The preset's target files.
    #[arg(long, value_name = "LOCATOR", requires = "profile")]
    pub media_to: Option<String>,
    /// The new platform's base URL, for the http checks.
    #[arg(long, value_name = "URL", requires = "profile")]
    pub platform_url: Option<String>,
    /// The platform's admin account for the login check; its password is read from the
    /// environment variable named by --admin-password-env, never from a flag.
    #[arg(long, value_name = "NAME", requires = "profile")]
    pub admin_user: Option<String>,
    #[arg(
        long,
        value_name = "VAR",
        default_value = cutover::preset::PASSWORD_ENV
    )]
    pub admin_password_env: String,
    /// A pg_dump archive of the source, for the backup check.
    #[arg(long, value_name = "FILE", requires = "profile")]
    pub dump: Option<PathBuf>,
    /// Where sync records the source's state (preset; default ./cutover-<profile>.state.json).
    #[arg(long, value_name = "FILE", requires = "profile")]
    pub state: Option<PathBuf>,
    /// Run only these checks: comma-separated kinds or check names.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub only: Vec<String>,
    /// Leave these checks out: comma-separated kinds or check names.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub skip: Vec<String>,
    #[command(flatten)]
    pub summary: crate::cli::SummaryFile,
    /// Write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// sync of a copy job erases and re-copies the target's tables: answer yes to the
    /// confirmation it asks (for scripts).
    #[arg(long)]
    pub yes: bool,
}

impl CutoverArgs {
    fn spec(&self) -> Result<CutoverSpec, Error> {
        match (&self.spec, &self.profile) {
            (Some(path), _) => CutoverSpec::read(path),
            (None, Some(profile)) => cutover::preset::build(&cutover::preset::Preset {
                profile: profile.clone(),
                source: self.source.clone().unwrap_or_default(),
                target: self.target.clone().unwrap_or_default(),
                media_from: self.media_from.clone(),
                media_to: self.media_to.clone(),
                platform_url: self.platform_url.clone(),
                admin_user: self.admin_user.clone(),
                admin_password_env: self.admin_password_env.clone(),
                dump: self.dump.clone(),
                state: self
                    .state
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("cutover-{profile}.state.json"))),
            }),
            (None, None) => Err(Error::input(
                "name a spec with --spec FILE, or --profile peertube",
            )),
        }
    }
}

pub async fn run(command: CutoverCommand, bars: bool) -> i32 {
    let (args, sync) = match &command {
        CutoverCommand::Check(a) => (a, false),
        CutoverCommand::Sync(a) => (a, true),
    };
    let result = async {
        let spec = args.spec()?;
        let selection = Selection {
            only: args.only.clone(),
            skip: args.skip.clone(),
        };
        let cx = crate::context(bars, args.yes);
        if sync {
            cutover::sync(&spec, &selection, &cx).await
        } else {
            cutover::check(&spec, &selection, &cx).await
        }
    }
    .await;
    match result {
        Ok(outcome) => {
            print!("{}", cutover::report::terminal(&outcome));
            let code = outcome.exit_code();
            match write_files(args, &outcome) {
                Ok(()) => code,
                Err(e) => {
                    eprintln!("error: {e}");
                    code.max(2)
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            // The files asked for still say why, so a CI system shows the error.
            if let Err(w) = write_files(args, &Outcome::error(&e.to_string())) {
                eprintln!("error: {w}");
            }
            e.exit_code().max(1)
        }
    }
}

fn write_files(args: &CutoverArgs, outcome: &Outcome) -> Result<(), String> {
    type Render = fn(&Outcome) -> String;
    let files: [(&Option<PathBuf>, Render); 3] = [
        (&args.summary.summary, cutover::report::json),
        (&args.junit, cutover::report::junit),
        (&args.html, cutover::report::html),
    ];
    for (path, render) in files {
        if let Some(path) = path {
            std::fs::write(path, render(outcome))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
