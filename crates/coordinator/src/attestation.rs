//! Hardware attestation in the coordinator (issue 5): trust-level names,
//! the stricter-of rule for client requirements, and (with
//! `proofmesh-attest`) admitting a provider's evidence bundle at the
//! handshake and on re-checks.

use proofmesh_attest::{
    admit as admit_bundle, admit_expecting, Admission, EvidenceBundle, Expected, Revocation,
    TrustLevel, VerifyOptions,
};
use proofmesh_placement::AttestationLevel;
use proofmesh_receipt::PublicKey;
use proofmesh_wire::EvidenceJson;

use crate::registry::{Attested, ProviderHandle};
use crate::state::AppState;

/// Parses a trust level as clients and operators write it.
pub fn parse_level(s: &str) -> Option<AttestationLevel> {
    match s {
        "none" => Some(AttestationLevel::None),
        "tee" => Some(AttestationLevel::Tee),
        "tee+gpu" => Some(AttestationLevel::TeeGpu),
        _ => None,
    }
}

/// The name of a trust level.
pub fn level_name(l: AttestationLevel) -> &'static str {
    match l {
        AttestationLevel::None => "none",
        AttestationLevel::Tee => "tee",
        AttestationLevel::TeeGpu => "tee+gpu",
    }
}

/// What a request needs: the stricter of its own field and its API key's
/// policy (an unreadable stored policy counts as the strictest, so a
/// corrupted row never loosens a client's requirement).
pub fn required(request: AttestationLevel, key_policy: Option<&str>) -> AttestationLevel {
    let key = key_policy.map_or(AttestationLevel::None, |p| {
        parse_level(p).unwrap_or(AttestationLevel::TeeGpu)
    });
    request.max(key)
}

fn placement_level(t: TrustLevel) -> AttestationLevel {
    match t {
        TrustLevel::None => AttestationLevel::None,
        TrustLevel::Tee => AttestationLevel::Tee,
        TrustLevel::TeeGpu => AttestationLevel::TeeGpu,
    }
}

/// Verifies `bundle` for `key` against the `nonce` this coordinator issued:
/// signatures, chains and collateral offline at the current time, the
/// binding (report data = H(key, nonce), every GPU's nonce), and the
/// configured policy. Evidence for another key (one registered here is
/// named), with a stale or replayed nonce, or failing the policy is refused
/// with the reason. `Ok(None)`: no evidence, trust level `none`.
///
/// Revocation: AMD and NVIDIA certificates are checked against the cached
/// revocation list the coordinator holds (empty here: no revocation data
/// is fetched, which the verdict records); Intel CRLs travel in the
/// collateral and are checked.
pub async fn admit(
    app: &AppState,
    key: &PublicKey,
    nonce: &[u8; 32],
    bundle: Option<&EvidenceJson>,
) -> Result<Option<Attested>, String> {
    let Some(json) = bundle else {
        return Ok(None);
    };
    // The protocol carries the bundle as JSON; its format is attest's.
    let bundle: EvidenceBundle = json
        .decode()
        .map_err(|e| format!("the evidence bundle does not parse: {e}"))?;
    let bundle = &bundle;
    let known: Vec<[u8; 32]> = app
        .store
        .list_providers()
        .await
        .map_err(|e| format!("internal error: {e}"))?
        .iter()
        .filter(|p| p.provider_key != key.as_str())
        .filter_map(|p| PublicKey::parse(&p.provider_key).ok())
        .map(|k| k.to_bytes())
        .collect();
    let seam = app.config.attestation_test_seam.as_ref();
    let now_s = seam.map_or(app.clock.now_ms() / 1000, |s| s.now_s);
    let revocation = Revocation::default();
    let opts = VerifyOptions::production(now_s, &revocation);
    let policy = app.config.attestation_policy.as_ref();
    let admitted: Result<Admission, _> = match seam {
        Some(s) => admit_expecting(
            bundle,
            &opts,
            policy,
            &Expected::RawForTesting {
                report_data: s.report_data,
                gpu_nonce: s.gpu_nonce,
            },
        ),
        None => admit_bundle(bundle, &opts, policy, &key.to_bytes(), nonce, &known),
    };
    let a = admitted.map_err(|e| e.to_string())?;
    metrics::counter!("proofmesh_attestations_verified_total", "level" => a.trust_level.as_str())
        .increment(1);
    if a.trust_level == TrustLevel::None {
        return Ok(None);
    }
    // Under the test seam, verification ran at a pinned past time; keep the
    // evidence's remaining validity relative to now, not its absolute date.
    let not_after_s = match seam {
        Some(s) => a
            .not_after
            .map(|t| (app.clock.now_ms() / 1000).saturating_add(t.saturating_sub(s.now_s))),
        None => a.not_after,
    };
    Ok(Some(Attested {
        level: a.trust_level.as_str().to_owned(),
        evidence_digest: hex::encode(a.evidence_digest),
        not_after_s,
        verified_at_ms: app.clock.now_ms(),
    }))
}

/// Makes `attested` the provider's current attestation: on its handle
/// (receipts), in placement (trust filters) and in the store (operators).
pub async fn apply(app: &AppState, handle: &ProviderHandle, attested: Option<Attested>) {
    let key = handle.key.as_str();
    let level = attested
        .as_ref()
        .and_then(|a| TrustLevel::parse(&a.level))
        .map_or(AttestationLevel::None, placement_level);
    app.fleet.placer().set_attestation(key, level);
    let json = attested
        .as_ref()
        .and_then(|a| serde_json::to_string(a).ok());
    if let Err(e) = app
        .store
        .set_provider_attestation(key, json.as_deref())
        .await
    {
        tracing::error!(error = %e, "recording provider attestation");
    }
    *handle
        .attestation
        .write()
        .unwrap_or_else(|e| e.into_inner()) = attested;
}

/// The scheduled re-check: an attestation past its expiry is dropped at
/// once; then a fresh nonce goes out for new evidence.
pub async fn recheck(app: &AppState, handle: &ProviderHandle) -> proofmesh_wire::CoordinatorMsg {
    let now_ms = app.clock.now_ms();
    let expired = handle
        .attestation
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|a| {
            a.not_after_s
                .is_some_and(|t| t.saturating_mul(1000) <= now_ms)
        });
    if expired {
        tracing::warn!(provider = %handle.key, "attestation expired; trust level none until new evidence verifies");
        apply(app, handle, None).await;
    }
    let nonce: [u8; 32] = rand::random();
    *handle
        .pending_nonce
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(nonce);
    proofmesh_wire::CoordinatorMsg::Reattest {
        nonce: hex::encode(nonce),
    }
}

/// Evidence answering a re-check: accepted only for the nonce just issued
/// (anything else is stale or replayed, and ignored); on failure the
/// provider drops to trust level `none` and the reason is logged.
pub async fn on_evidence(
    app: &AppState,
    handle: &ProviderHandle,
    nonce_hex: &str,
    bundle: Option<&EvidenceJson>,
) {
    let pending = handle
        .pending_nonce
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let nonce = match (pending, nonce_bytes(nonce_hex)) {
        (Some(p), Some(n)) if p == n => p,
        _ => {
            tracing::warn!(provider = %handle.key, "attestation for a nonce not issued (stale or replayed); ignored");
            metrics::counter!("proofmesh_attestations_rejected_total", "reason" => "nonce")
                .increment(1);
            return;
        }
    };
    match admit(app, &handle.key, &nonce, bundle).await {
        Ok(a) => apply(app, handle, a).await,
        Err(why) => {
            tracing::warn!(provider = %handle.key, %why, "attestation re-check failed; trust level none");
            metrics::counter!("proofmesh_attestations_rejected_total", "reason" => "evidence")
                .increment(1);
            apply(app, handle, None).await;
        }
    }
}

/// Parses a hex nonce this coordinator issued.
pub fn nonce_bytes(hex_nonce: &str) -> Option<[u8; 32]> {
    hex::decode(hex_nonce).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_order_and_combine() {
        for l in [
            AttestationLevel::None,
            AttestationLevel::Tee,
            AttestationLevel::TeeGpu,
        ] {
            assert_eq!(parse_level(level_name(l)), Some(l));
        }
        assert_eq!(parse_level("TEE"), None);
        assert_eq!(
            required(AttestationLevel::None, Some("tee")),
            AttestationLevel::Tee
        );
        assert_eq!(
            required(AttestationLevel::TeeGpu, Some("tee")),
            AttestationLevel::TeeGpu
        );
        assert_eq!(
            required(AttestationLevel::None, Some("garbage")),
            AttestationLevel::TeeGpu
        );
        assert_eq!(
            required(AttestationLevel::None, None),
            AttestationLevel::None
        );
    }
}
