//! The stored pairing as a layer of the settings, between the board profile and the defaults
//! (`sources.rs` owns the order): a command that is not told the login URL, the client id or the
//! flow takes them from the pairing it stands on, and so do the flow's own settings (the JWT
//! bearer's key file, user and audience; the client credentials' secret file). `sfpair run`
//! with no flags serves and re-pairs the org it is paired with; `doctor` checks that org.
//!
//! A value given above this layer (a flag, the environment, the board profile) that disagrees
//! with the stored one is said once, with what it means for the command: `pair` pairs anew with
//! it, `run` uses it for its next pairing, the others use the stored pairing as it is.
//!
//! Only a Salesforce pairing is a layer: an RFC 8628 record does not say where its device
//! endpoint is. The flow's own settings are offered only when the flow and the client id are
//! the stored ones (a key file is no use to another app). No I/O: the record comes from the
//! caller (`plan`'s reader, `commands::stored_pairing`); paths compare as absolute paths.

use std::path::Path;

use log::warn;

use super::sources::Sources;
use crate::cli::table::spec;
use crate::cli::{CommandName, Opt};
use crate::error::Error;
use crate::flow::dialect::Dialect;
use crate::store::Record;
use crate::store::record::Headless;

/// The settings the stored pairing gives.
pub(super) struct Stored {
    values: Vec<(Opt, String)>,
}

/// The settings a stored pairing can give; a command whose options include none of them
/// does not read the store for its settings.
pub(super) const LAYERED: [Opt; 7] = [
    Opt::LoginUrl,
    Opt::ClientId,
    Opt::Flow,
    Opt::KeyFile,
    Opt::Username,
    Opt::Audience,
    Opt::ClientSecretFile,
];

impl Stored {
    /// The layer of `record`, given what the layers above say (`above`, which has no stored
    /// layer yet).
    pub(super) fn new(record: &Record, above: &Sources) -> Result<Stored, Error> {
        let mut values = Vec::new();
        if record.dialect != Dialect::Salesforce {
            return Ok(Stored { values });
        }
        if !record.login_url.is_empty() {
            values.push((Opt::LoginUrl, record.login_url.clone()));
        }
        values.push((Opt::ClientId, record.client_id.clone()));
        values.push((Opt::Flow, record.grant.name().to_string()));
        let same_app =
            [Opt::Flow, Opt::ClientId]
                .into_iter()
                .all(|opt| match above.explicit(opt) {
                    Ok(Some((given, _))) => same(opt, &given, &values),
                    _ => true,
                });
        if same_app {
            match record.grant.headless() {
                Some(Headless::JwtBearer {
                    username,
                    key_file,
                    audience,
                }) => {
                    values.push((Opt::KeyFile, key_file.clone()));
                    values.push((Opt::Username, username.clone()));
                    values.push((Opt::Audience, audience.clone()));
                }
                Some(Headless::ClientCredentials {
                    secret_file: Some(path),
                }) => values.push((Opt::ClientSecretFile, path.clone())),
                _ => {}
            }
        }
        Ok(Stored { values })
    }

    /// What the stored pairing says for `opt`, if anything.
    pub(super) fn value(&self, opt: Opt) -> Option<&str> {
        self.values
            .iter()
            .find(|(o, _)| *o == opt)
            .map(|(_, v)| v.as_str())
    }

    /// Says once, for each setting the command takes, when a layer above gives it otherwise.
    pub(super) fn note_disagreements(&self, above: &Sources, command: Option<CommandName>) {
        for (opt, stored) in &self.values {
            let Ok(Some((given, from))) = above.explicit(*opt) else {
                continue;
            };
            if same(*opt, &given, &self.values) {
                continue;
            }
            let given = given.trim();
            let what = match command {
                Some(CommandName::Pair) => format!(
                    "the new pairing uses {given}, and replaces the stored one once it is stored"
                ),
                Some(CommandName::Run) => format!(
                    "the stored pairing serves as it is (its refresh token belongs to it); a \
                     new pairing will use {given}"
                ),
                _ => format!(
                    "the stored pairing is used as it is (its refresh token belongs to it). To \
                     pair with {given}, run `sfpair pair --force`"
                ),
            };
            warn!(
                "{from} {given} is not the one this device paired with ({stored}); {what}",
                from = source_name(&from, *opt),
            );
        }
    }
}

/// "--login-url", "SFPAIR_LOGIN_URL" or, for a board profile, the profile's variable.
fn source_name(from: &str, opt: Opt) -> String {
    if from.starts_with("--") {
        from.to_string()
    } else {
        spec(opt).env.unwrap_or(from).to_string()
    }
}

/// Whether `given` says what the stored `values` say for `opt`, once both are normalized as the
/// setting is (a login URL without its trailing slash, a path made absolute).
fn same(opt: Opt, given: &str, values: &[(Opt, String)]) -> bool {
    let Some((_, stored)) = values.iter().find(|(o, _)| *o == opt) else {
        return true;
    };
    let given = given.trim();
    match opt {
        Opt::LoginUrl | Opt::Audience => given.trim_end_matches('/') == stored,
        Opt::KeyFile | Opt::ClientSecretFile => {
            std::path::absolute(given).is_ok_and(|p| p == Path::new(stored))
        }
        _ => given == stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use crate::store::record::Grant;

    fn record(grant: Grant) -> Record {
        Record {
            refresh_token: crate::secret::Secret::new("5Aep861"),
            client_id: "3MVG9STORED".into(),
            dialect: Dialect::Salesforce,
            login_url: "https://acme.my.salesforce.com".into(),
            token_url: "https://acme.my.salesforce.com/services/oauth2/token".into(),
            revoke_url: None,
            instance_url: "https://acme.my.salesforce.com".into(),
            identity_url: String::new(),
            scope: "api refresh_token".into(),
            issued_at_ms: 0,
            paired_at: 0,
            grant,
        }
    }

    fn layer(record: &Record, given: &[(Opt, &str)]) -> Stored {
        let args = Args::with(CommandName::Run, given, &[]);
        let nothing = |_: &str| None;
        Stored::new(record, &Sources::new(&args, &nothing, None)).unwrap()
    }

    #[test]
    fn a_salesforce_pairing_gives_its_org_app_and_flow_with_the_flow_s_own_settings() {
        let jwt = record(Grant::jwt_bearer(
            "gw@acme.com".into(),
            "/etc/sfpair/device.key".into(),
            "https://login.salesforce.com".into(),
        ));
        let l = layer(&jwt, &[]);
        assert_eq!(
            l.value(Opt::LoginUrl),
            Some("https://acme.my.salesforce.com")
        );
        assert_eq!(l.value(Opt::ClientId), Some("3MVG9STORED"));
        assert_eq!(l.value(Opt::Flow), Some("jwt-bearer"));
        assert_eq!(l.value(Opt::KeyFile), Some("/etc/sfpair/device.key"));
        assert_eq!(l.value(Opt::Username), Some("gw@acme.com"));
        // Another app, or another flow: the key is no use to it.
        let other = layer(&jwt, &[(Opt::ClientId, "3MVG9OTHER")]);
        assert_eq!(other.value(Opt::KeyFile), None);
        let device = layer(&jwt, &[(Opt::Flow, "device")]);
        assert_eq!(device.value(Opt::Username), None);
        let cc = record(Grant::client_credentials_from(Some("/etc/sfpair/s".into())));
        assert_eq!(
            layer(&cc, &[]).value(Opt::ClientSecretFile),
            Some("/etc/sfpair/s")
        );
        let rfc = Record {
            dialect: Dialect::Rfc8628,
            ..record(Grant::Device)
        };
        assert_eq!(layer(&rfc, &[]).value(Opt::ClientId), None, "no layer");
    }

    #[test]
    fn the_same_value_written_otherwise_is_no_disagreement() {
        let values = vec![
            (Opt::LoginUrl, "https://acme.my.salesforce.com".to_string()),
            (Opt::KeyFile, "/etc/sfpair/device.key".to_string()),
        ];
        assert!(same(
            Opt::LoginUrl,
            "https://acme.my.salesforce.com/",
            &values
        ));
        assert!(!same(Opt::LoginUrl, "https://test.salesforce.com", &values));
        assert!(same(Opt::KeyFile, "/etc/sfpair/./device.key", &values));
        assert!(same(Opt::ClientId, "anything: not stored", &values));
    }
}
