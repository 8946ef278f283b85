//! Who the pairing acts as: the OpenID Connect userinfo of the paired user, with one renewal of
//! an expired session, as for REST calls.

use super::Agent;
use crate::api::{self, Outcome};
use crate::error::{Error, ErrorKind};
use crate::rest::{self, Unauthorized};
use crate::session::Session;

impl Agent {
    /// The user info of the paired user (OpenID Connect userinfo). An expired session is
    /// refreshed once, as for [`call`](Agent::call).
    pub fn userinfo(&mut self) -> Result<serde_json::Value, Error> {
        let session = self.access_token()?;
        if let Some(info) = self.userinfo_with(&session)? {
            return Ok(info);
        }
        self.session_refused(session.generation);
        let fresh = self.refresh()?;
        self.userinfo_with(&fresh)?.ok_or_else(|| {
            Error::new(
                ErrorKind::RepairNeeded,
                "userinfo refused a freshly refreshed session (401): pair again with \
                 `sfpair pair --force`",
            )
        })
    }

    /// userinfo with `session`; `None` when the session was refused as expired.
    pub(super) fn userinfo_with(
        &mut self,
        session: &Session,
    ) -> Result<Option<serde_json::Value>, Error> {
        let request = api::userinfo_request(&session.instance_url, &session.access_token);
        self.exchange(&request, |reply| match reply.status {
            200..=299 => match serde_json::from_slice(&reply.body) {
                Ok(v) => Outcome::Done(Some(v)),
                Err(_) => Outcome::Retry("malformed userinfo reply".into()),
            },
            401 if rest::unauthorized(&reply.body[..]) == Unauthorized::SessionExpired => {
                Outcome::Done(None)
            }
            500.. => Outcome::Retry(format!("HTTP {}", reply.status)),
            s => Outcome::Fail(Error::new(
                ErrorKind::Http,
                format!("userinfo answered HTTP {s}"),
            )),
        })
    }
}
