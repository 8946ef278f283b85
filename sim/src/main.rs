//! The `sfpair-sim` binary: flags in, a running simulator out. It serves until it is
//! killed (SIGTERM or SIGINT just end the process); bad flags exit with status 2.
//!
//! Flags only: everything else is the library's. Secrets are read from a file, never
//! from the command line, where `ps` would show them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use lexopt::prelude::*;
use sfpair_sim::{AppState, CertMode, Config, DenyMode, RefreshRefusal, Schema, Sim, SlowDown};

const USAGE: &str = "\
usage: sfpair-sim [flags]

A local HTTPS stand-in for Salesforce's OAuth 2.0 device flow (and a standard
RFC 8628 provider) for testing sfpair. Listens on 127.0.0.1 only.

  --port N                    port to listen on (0: any free port) [0]
  --port-file PATH            write the port and a newline there, atomically, once ready
  --ca-file PATH              write the CA certificate (PEM) there [a file in $TMPDIR]
  --client-id KEY             the only consumer key accepted [3MVG9sfpair.sim.consumer.key]
  --interval S                polling interval announced at step 1 [5]
  --code-ttl S                device and user code lifetime [600]
  --deny-mode MODE            denied codes answer: pending | access-denied [pending]
  --slow-down MODE            off | strict | N (the first N polls of each code) [off]
  --flaky N                   every N-th token request gets a 503 HTML page [0: never]
  --session-ttl S             access-token lifetime [7200]
  --rotate                    rotate refresh tokens at every refresh
  --consumer-secret-file PATH consumer secret: signs token responses
  --require-secret            refresh needs the consumer secret
  --auto-approve S            approve every new code S seconds after it was issued
  --device-flow-disabled      step 1 answers `device flow is not enabled for the app`
  --not-installed             step 1 answers `app must be installed into org`
  --app-name NAME             the connected app's name on the approval page [sfpair device agent]
  --cert KIND                 valid | wrong-host | expired [valid]
  --instance-host HOST        instance_url host in token replies (e.g. localhost); it must
                              resolve to 127.0.0.1; REST then answers only there [none]
  --schema FILE               custom objects and fields, JSON (see docs/simulator.md)
  --query-page-size N         records per page of a query result [2000]
  --refresh-idle S            refresh tokens unused for S seconds expire (refresh token policy)
  --refresh-lifetime S        refresh tokens older than S seconds expire
  --refuse-refresh KIND       every refresh is refused: ip-restricted | secret-required
  --jwt-access-tokens         access tokens are JWTs with exp
  --headless LIST             the approval-free grants, comma-separated: jwt-key=PEM (an RSA
                              public key: JWT bearer on), no-pre-approval, no-run-as-user,
                              not-my-domain, no-token-exchange, asset-ttl=S [600],
                              max-exp-ahead=S [180] (all on but JWT bearer)
  --collections-drop-every N  every N-th sObject Collections request is committed, then its
                              connection closed without a reply [0: never]
  --lock-row-every N          every N-th record sent through sObject Collections is refused
                              UNABLE_TO_LOCK_ROW, each distinct record once [0: never]
  --api-limit N               the daily API allocation: reported in Sforce-Limit-Info, and
                              REST answers 403 REQUEST_LIMIT_EXCEEDED once N are used
                              [none: 15000 reported, nothing refused]
  --event-retention S         how long platform events and change events stay replayable;
                              decimals allowed [259200: 72 h]
  --streaming-hold S          how long /meta/connect is held without events (advice.timeout);
                              decimals allowed [110]
  --streaming-silence S       a streaming client silent this long is forgotten [40]
  --streaming-clients N       the org's concurrent streaming clients [1000]
  --forget-client-every N     every N-th /meta/connect forgets its client, which gets
                              403::Unknown client [0: never]
  --cut-event-reply-every N   every N-th connect reply carrying events is cut after the
                              events were taken [0: never]
  --quiet                     do not log requests to stderr
  --help                      show this help
";

struct Options {
    config: Config,
    port_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    secret_file: Option<PathBuf>,
    schema_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse(lexopt::Parser::from_env()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sfpair-sim: {e}\nTry 'sfpair-sim --help'.");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sfpair-sim: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The options, or `None` for `--help`.
fn parse(mut parser: lexopt::Parser) -> Result<Option<Options>, lexopt::Error> {
    let mut config = Config {
        log_to_stderr: true,
        ..Config::default()
    };
    let (mut port_file, mut ca_file, mut secret_file, mut schema_file) = (None, None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => config.port = number(&mut parser, "port")?,
            Long("port-file") => port_file = Some(parser.value()?.into()),
            Long("ca-file") => ca_file = Some(parser.value()?.into()),
            Long("client-id") => config.client_id = parser.value()?.string()?,
            Long("interval") => config.interval = number(&mut parser, "interval")?,
            Long("code-ttl") => config.code_ttl = seconds(&mut parser, "code-ttl")?,
            Long("deny-mode") => {
                config.deny_mode = match parser.value()?.string()?.as_str() {
                    "pending" => DenyMode::Pending,
                    "access-denied" => DenyMode::AccessDenied,
                    other => {
                        return Err(format!(
                            "--deny-mode: expected pending or access-denied, not {other:?}"
                        )
                        .into());
                    }
                }
            }
            Long("slow-down") => {
                config.slow_down = match parser.value()?.string()?.as_str() {
                    "off" => SlowDown::Off,
                    "strict" => SlowDown::Strict,
                    n => SlowDown::FirstPolls(n.parse().map_err(|_| {
                        format!("--slow-down: expected off, strict or a count, not {n:?}")
                    })?),
                }
            }
            Long("flaky") => config.flaky = number(&mut parser, "flaky")?,
            Long("session-ttl") => config.session_ttl = Some(seconds(&mut parser, "session-ttl")?),
            Long("rotate") => config.rotate_refresh_tokens = true,
            Long("consumer-secret-file") => secret_file = Some(PathBuf::from(parser.value()?)),
            Long("require-secret") => config.require_secret_for_refresh = true,
            Long("auto-approve") => {
                config.auto_approve_after = Some(seconds(&mut parser, "auto-approve")?)
            }
            Long("device-flow-disabled") => config.app = AppState::DeviceFlowDisabled,
            Long("not-installed") => config.app = AppState::NotInstalled,
            Long("cert") => {
                config.cert = match parser.value()?.string()?.as_str() {
                    "valid" => CertMode::Valid,
                    "wrong-host" => CertMode::WrongHost,
                    "expired" => CertMode::Expired,
                    other => {
                        return Err(format!(
                            "--cert: expected valid, wrong-host or expired, not {other:?}"
                        )
                        .into());
                    }
                }
            }
            Long("instance-host") => {
                let host = parser.value()?.string()?;
                let valid = !host.is_empty()
                    && host.len() <= 253
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
                if !valid {
                    return Err(format!(
                        "--instance-host: expected a host name such as localhost, not {host:?}"
                    )
                    .into());
                }
                config.instance_host = Some(host);
            }
            Long("app-name") => config.app_name = parser.value()?.string()?,
            Long("schema") => schema_file = Some(PathBuf::from(parser.value()?)),
            Long("query-page-size") => {
                config.query_page_size = number(&mut parser, "query-page-size")?;
                if config.query_page_size == 0 {
                    return Err("--query-page-size: expected at least 1".into());
                }
            }
            Long("refresh-idle") => {
                config.refresh_idle = Some(seconds(&mut parser, "refresh-idle")?)
            }
            Long("refresh-lifetime") => {
                config.refresh_lifetime = Some(seconds(&mut parser, "refresh-lifetime")?)
            }
            Long("refuse-refresh") => {
                config.refresh_refusal = Some(match parser.value()?.string()?.as_str() {
                    "ip-restricted" => RefreshRefusal::IpRestricted,
                    "secret-required" => RefreshRefusal::SecretRequired,
                    other => {
                        return Err(format!(
                            "--refuse-refresh: expected ip-restricted or secret-required, not {other:?}"
                        )
                        .into());
                    }
                })
            }
            Long("jwt-access-tokens") => config.jwt_access_tokens = true,
            Long("headless") => config
                .headless
                .apply(&parser.value()?.string()?)
                .map_err(|e| lexopt::Error::from(format!("--headless: {e}")))?,
            Long("collections-drop-every") => {
                config.commit_then_drop_every = number(&mut parser, "collections-drop-every")?
            }
            Long("lock-row-every") => {
                config.lock_row_every = number(&mut parser, "lock-row-every")?
            }
            Long("api-limit") => config.api_limit = Some(number(&mut parser, "api-limit")?),
            Long("event-retention") => {
                config.event_retention = fractional(&mut parser, "event-retention")?
            }
            Long("streaming-hold") => {
                config.streaming_hold = fractional(&mut parser, "streaming-hold")?
            }
            Long("streaming-silence") => {
                config.streaming_silence = fractional(&mut parser, "streaming-silence")?
            }
            Long("streaming-clients") => {
                config.streaming_client_limit = number(&mut parser, "streaming-clients")?
            }
            Long("forget-client-every") => {
                config.forget_client_every_connect = number(&mut parser, "forget-client-every")?
            }
            Long("cut-event-reply-every") => {
                config.cut_event_reply_every = number(&mut parser, "cut-event-reply-every")?
            }
            Long("quiet") => config.log_to_stderr = false,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    if config.require_secret_for_refresh && secret_file.is_none() {
        return Err("--require-secret needs --consumer-secret-file".into());
    }
    Ok(Some(Options {
        config,
        port_file,
        ca_file,
        secret_file,
        schema_file,
    }))
}

/// The flag's value as a number, or an error that names the flag.
fn number<T: FromStr>(parser: &mut lexopt::Parser, flag: &str) -> Result<T, lexopt::Error> {
    let value = parser.value()?.string()?;
    value
        .parse()
        .map_err(|_| format!("--{flag}: expected a whole number, not {value:?}").into())
}

fn seconds(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, lexopt::Error> {
    Ok(Duration::from_secs(number(parser, flag)?))
}

/// Seconds with an optional fraction (`1.5`), for the knobs tests shorten below a second.
fn fractional(parser: &mut lexopt::Parser, flag: &str) -> Result<Duration, lexopt::Error> {
    let value = parser.value()?.string()?;
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("--{flag}: expected seconds such as 2 or 0.5, not {value:?}").into())
}

fn run(mut options: Options) -> Result<(), String> {
    if let Some(path) = &options.secret_file {
        let secret = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        options.config.consumer_secret = Some(secret.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Some(path) = &options.schema_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        options.config.schema =
            Schema::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let sim = Sim::start(options.config).map_err(|e| format!("starting: {e}"))?;
    let ca_file = options
        .ca_file
        .unwrap_or_else(|| std::env::temp_dir().join(format!("sfpair-sim-{}-ca.pem", sim.port())));
    sim.write_ca(&ca_file)
        .map_err(|e| format!("writing {}: {e}", ca_file.display()))?;
    // The port file comes last: a harness that waits for it finds the CA file ready too.
    if let Some(path) = &options.port_file {
        write_atomically(path, &format!("{}\n", sim.port()))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    eprintln!("sfpair-sim: listening on {}", sim.base_url());
    if sim.instance_url() != sim.base_url() {
        eprintln!("sfpair-sim: instance_url is {}", sim.instance_url());
    }
    eprintln!("sfpair-sim: CA certificate in {}", ca_file.display());
    loop {
        std::thread::park();
    }
}

/// Writes beside the target, then renames, so a reader never sees a half-written file.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        match parse(lexopt::Parser::from_args(args.iter().copied())) {
            Ok(Some(options)) => options.config,
            _ => panic!("flags refused: {args:?}"),
        }
    }

    #[test]
    fn delivery_fault_flags_reach_the_config() {
        let set = config(&[
            "--collections-drop-every",
            "3",
            "--lock-row-every",
            "11",
            "--api-limit",
            "500",
        ]);
        assert_eq!(
            (
                set.commit_then_drop_every,
                set.lock_row_every,
                set.api_limit
            ),
            (3, 11, Some(500))
        );
        let unset = config(&[]);
        assert_eq!(
            (
                unset.commit_then_drop_every,
                unset.lock_row_every,
                unset.api_limit
            ),
            (0, 0, None)
        );
        assert!(parse(lexopt::Parser::from_args(["--lock-row-every", "-1"])).is_err());
    }

    #[test]
    fn streaming_flags_reach_the_config() {
        let set = config(&[
            "--event-retention",
            "2.5",
            "--streaming-hold",
            "0.5",
            "--streaming-silence",
            "3",
            "--streaming-clients",
            "4",
            "--forget-client-every",
            "5",
            "--cut-event-reply-every",
            "4",
        ]);
        assert_eq!(set.event_retention, Duration::from_millis(2500));
        assert_eq!(set.streaming_hold, Duration::from_millis(500));
        assert_eq!(set.streaming_silence, Duration::from_secs(3));
        assert_eq!(
            (
                set.streaming_client_limit,
                set.forget_client_every_connect,
                set.cut_event_reply_every
            ),
            (4, 5, 4)
        );
        let unset = config(&[]);
        assert_eq!(unset.streaming_hold, Duration::from_secs(110));
        assert_eq!(unset.event_retention, Duration::from_secs(72 * 3600));
        assert!(parse(lexopt::Parser::from_args(["--streaming-hold", "-1"])).is_err());
        assert!(parse(lexopt::Parser::from_args(["--streaming-hold", "soon"])).is_err());
    }
}
