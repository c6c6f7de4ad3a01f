//! One ACME order, start to finish: the account (created once, then reused
//! from the storage), the order for the names, the HTTP-01 answers published
//! in the storage, finalization with a new key, the chain stored.

use super::storage::Storage;
use crate::config::{AcmeSpec, Challenge};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use std::time::Duration;

/// The account for `spec`: the stored one, or a new one (then stored).
async fn account(spec: &AcmeSpec, storage: &Storage) -> Result<Account, String> {
    let builder = || match &spec.ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    };
    let err = |e: instant_acme::Error| e.to_string();
    if let Some(creds) = storage.account() {
        return builder()
            .map_err(err)?
            .from_credentials(creds)
            .await
            .map_err(err);
    }
    let contact: Vec<String> = spec.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()
        .map_err(err)?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            spec.directory.clone(),
            None,
        )
        .await
        .map_err(err)?;
    storage.save_account(&creds)?;
    Ok(account)
}

/// The TLS-ALPN-01 answer for `domain` (RFC 8737): a self-signed
/// certificate naming it, with the critical `acmeIdentifier` extension
/// holding `digest` (SHA-256 of the key authorization). PEM chain and key.
fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<(String, String), String> {
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Order a certificate for `spec.domains` and store it under the first
/// name. The error carries the server's reason. An account the server no
/// longer knows (deactivated, or a test server restarted) is replaced by a
/// new one, once.
pub async fn order(spec: &AcmeSpec, storage: &Storage) -> Result<(), String> {
    match order_once(spec, storage).await {
        Err(e) if e.contains("accountDoesNotExist") => {
            log::warn!(
                "ACME: the server no longer knows the stored account ({e}); registering a new one"
            );
            storage.forget_account();
            order_once(spec, storage).await
        }
        other => other,
    }
}

async fn order_once(spec: &AcmeSpec, storage: &Storage) -> Result<(), String> {
    let account = account(spec, storage).await?;
    let ids: Vec<Identifier> = spec.domains.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut published = Vec::new();
    let result = async {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a.map_err(|e| format!("authorization: {e}"))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => return Err(format!("authorization is {s:?}")),
            }
            let domain = match &a.identifier().identifier {
                Identifier::Dns(d) => d.clone(),
                other => return Err(format!("unexpected identifier {other:?}")),
            };
            let kind = match spec.challenge {
                Challenge::Http01 => ChallengeType::Http01,
                Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            };
            let mut ch = a.challenge(kind).ok_or_else(|| {
                format!("the server offers no {} challenge", spec.challenge.name())
            })?;
            let key_auth = ch.key_authorization();
            match spec.challenge {
                Challenge::Http01 => storage.put_challenge(&ch.token, key_auth.as_str())?,
                Challenge::TlsAlpn01 => {
                    let (chain, key) = alpn_certificate(&domain, key_auth.digest().as_ref())?;
                    storage.put_alpn(&domain, &chain, &key)?
                }
            }
            published.push((ch.token.clone(), domain));
            ch.set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|e| format!("validation: {e}"))?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map_or_else(|| format!("{status:?}"), |p| p.to_string());
            return Err(format!("the order is {status:?}: {why}"));
        }
        let key = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        storage.save_certificate(&spec.domains[0], &chain, &key)
    }
    .await;
    for (token, domain) in &published {
        storage.remove_challenge(token);
        storage.remove_alpn(domain);
    }
    result
}
