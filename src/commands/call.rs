//! `sfpair call METHOD PATH`: one REST call with the paired session; the body to standard
//! output (streamed, whatever its size), the status to the exit code.
//!
//! The request body is read here, when the command runs (`--data @FILE`, `@-` for standard
//! input), whole and within [`MAX_DATA`]: it must be in memory to be sent again after a refresh.

use std::io::{Read, Write};
use std::path::PathBuf;

use super::Backends;
use crate::agent::Agent;
#[cfg(feature = "broker")]
use crate::broker::client::{Broker, BrokerCaller};
use crate::error::Error;
#[cfg(feature = "broker")]
use crate::http::UreqTransport;
use crate::rest::RestRequest;

/// Largest request body `call` reads from a file or standard input.
pub const MAX_DATA: u64 = 16 * 1024 * 1024;

/// Where the request body comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    /// `--data TEXT`.
    Inline(Vec<u8>),
    /// `--data @FILE`.
    File(PathBuf),
    /// `--data @-`.
    Stdin,
}

impl Body {
    /// A `--data` value: text as is, `@FILE`, or `@-`.
    pub fn from_arg(data: &str) -> Body {
        match data.strip_prefix('@') {
            None => Body::Inline(data.as_bytes().to_vec()),
            Some("-") => Body::Stdin,
            Some(path) => Body::File(PathBuf::from(path)),
        }
    }

    /// The bytes, read whole within [`MAX_DATA`].
    pub fn read(&self) -> Result<Option<Vec<u8>>, Error> {
        let (name, reader): (String, Box<dyn Read>) = match self {
            Body::None => return Ok(None),
            Body::Inline(bytes) => return Ok(Some(bytes.clone())),
            Body::Stdin => ("standard input".into(), Box::new(std::io::stdin())),
            Body::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| {
                    Error::config(format!("cannot read --data file {}: {e}", path.display()))
                })?;
                (path.display().to_string(), Box::new(file))
            }
        };
        let mut body = Vec::new();
        reader
            .take(MAX_DATA + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::config(format!("cannot read --data from {name}: {e}")))?;
        if body.len() as u64 > MAX_DATA {
            return Err(Error::config(format!(
                "--data from {name} is larger than {} MiB",
                MAX_DATA / 1024 / 1024
            )));
        }
        Ok(Some(body))
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Method, path and headers; the body is read when the call runs.
    pub request: RestRequest,
    pub body: Body,
    /// `--socket`: sessions from this broker instead of the store.
    pub socket: Option<PathBuf>,
}

pub fn run(
    agent: &mut Agent,
    options: &Options,
    backends: &Backends,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    let mut request = options.request.clone();
    request.body = options.body.read()?;
    agent.wait_for_clock(backends.wait_for_clock)?;
    let reply = match &options.socket {
        #[cfg(not(feature = "broker"))]
        Some(_) => {
            return Err(super::not_built(
                "sfpair call --socket",
                "the token broker",
                "broker",
            ));
        }
        #[cfg(feature = "broker")]
        Some(path) => {
            let mut caller = BrokerCaller {
                broker: Broker::new(path),
                transport: Box::new(UreqTransport::new(&backends.http)?),
            };
            crate::call::call(&mut caller, &request, out)?
        }
        None => agent.call(&request, out)?,
    };
    out.flush().map_err(super::output_error)?;
    log::info!(
        "HTTP {} ({} bytes{}){}",
        reply.status,
        reply.bytes,
        if reply.refreshed {
            ", after refreshing the session"
        } else {
            ""
        },
        reply
            .limit_info
            .as_deref()
            .map(|l| format!(", Sforce-Limit-Info: {l}"))
            .unwrap_or_default()
    );
    match reply.error() {
        None => Ok(0),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_come_inline_from_a_file_or_from_standard_input() {
        assert_eq!(Body::from_arg("{}"), Body::Inline(b"{}".to_vec()));
        assert_eq!(Body::from_arg("@-"), Body::Stdin);
        assert_eq!(Body::from_arg("@/tmp/b"), Body::File("/tmp/b".into()));
        let path = std::env::temp_dir().join(format!("sfpair-body-{}", std::process::id()));
        std::fs::write(&path, r#"{"Name":"x"}"#).unwrap();
        let body = Body::File(path.clone()).read().unwrap();
        assert_eq!(body.as_deref(), Some(&br#"{"Name":"x"}"#[..]));
        std::fs::remove_file(&path).unwrap();
        let e = Body::File(path).read().unwrap_err();
        assert!(e.message().contains("cannot read --data file"), "{e}");
        assert_eq!(Body::None.read().unwrap(), None);
    }
}
