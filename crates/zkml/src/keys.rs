//! Groth16 keys bound to one model: the setup, and the proving and
//! verifying key files with their digests.
//!
//! A key file starts with a magic, the model digest and the model's input
//! and output widths, then the arkworks serialization. The verifying key's
//! digest (SHA-256 of its whole file) therefore commits to the model digest
//! it was made for; the registry maps model digest → VK digest.

use ark_bn254::Bn254;
use ark_groth16::{Groth16, PreparedVerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use ark_std::rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::circuit::{num_public_inputs, InferenceCircuit};
use crate::model::QuantModel;
use crate::ZkError;

const VK_MAGIC: &[u8; 8] = b"PMZKVK1\0";
const PK_MAGIC: &[u8; 8] = b"PMZKPK1\0";
/// Largest accepted verifying key file (public inputs ≤ 2·MAX_DIM + 3).
pub const MAX_VK_BYTES: usize = 1 << 20;

/// The verifying key of one model's circuit.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// Digest of the model the key was made for.
    pub model_digest: [u8; 32],
    /// Model input width.
    pub input_len: u32,
    /// Model output width.
    pub output_len: u32,
    pub(crate) pvk: PreparedVerifyingKey<Bn254>,
    digest: [u8; 32],
}

/// The proving key of one model's circuit (kept by provers; public).
#[derive(Clone, Debug)]
pub struct ProvingKey {
    /// Digest of the model the key was made for.
    pub model_digest: [u8; 32],
    pub(crate) pk: ark_groth16::ProvingKey<Bn254>,
    vk: VerifyingKey,
}

fn ser_err(what: &'static str, e: impl std::fmt::Display) -> ZkError {
    ZkError::Decode {
        what,
        reason: e.to_string(),
    }
}

fn header(magic: &[u8; 8], model_digest: &[u8; 32], dims: Option<(u32, u32)>) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(model_digest);
    if let Some((i, o)) = dims {
        out.extend_from_slice(&i.to_le_bytes());
        out.extend_from_slice(&o.to_le_bytes());
    }
    out
}

/// Magic, model digest and the two widths at the start of a key file.
fn parse_header(
    bytes: &[u8],
    magic: &[u8; 8],
    what: &'static str,
) -> Result<([u8; 32], u32, u32), ZkError> {
    if bytes.len() < 48 || &bytes[..8] != magic {
        return Err(ser_err(what, "bad magic or size"));
    }
    let mut model_digest = [0u8; 32];
    model_digest.copy_from_slice(&bytes[8..40]);
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((model_digest, word(40), word(44)))
}

impl VerifyingKey {
    fn new(
        model_digest: [u8; 32],
        input_len: u32,
        output_len: u32,
        vk: ark_groth16::VerifyingKey<Bn254>,
    ) -> Self {
        let mut k = VerifyingKey {
            model_digest,
            input_len,
            output_len,
            pvk: Groth16::<Bn254>::process_vk(&vk)
                .unwrap_or_else(|_| PreparedVerifyingKey::from(vk)),
            digest: [0; 32],
        };
        k.digest = Sha256::digest(k.to_bytes()).into();
        k
    }

    /// The key file: magic, model digest, input and output widths (u32 LE),
    /// the compressed arkworks verifying key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header(
            VK_MAGIC,
            &self.model_digest,
            Some((self.input_len, self.output_len)),
        );
        // Writing to a Vec cannot fail.
        let _ = self.pvk.vk.serialize_compressed(&mut out);
        out
    }

    /// Parses and checks a key file (points on the curve and in the
    /// subgroup, input count matching the widths). Safe on untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        if bytes.len() > MAX_VK_BYTES {
            return Err(ser_err("verifying key", "too large"));
        }
        let (model_digest, input_len, output_len) = parse_header(bytes, VK_MAGIC, "verifying key")?;
        let mut rest = &bytes[48..];
        let vk = ark_groth16::VerifyingKey::<Bn254>::deserialize_with_mode(
            &mut rest,
            Compress::Yes,
            Validate::Yes,
        )
        .map_err(|e| ser_err("verifying key", e))?;
        if !rest.is_empty() {
            return Err(ser_err("verifying key", "trailing bytes"));
        }
        let expected = input_len as usize + output_len as usize + 3 + 1;
        if vk.gamma_abc_g1.len() != expected {
            return Err(ser_err(
                "verifying key",
                "input count does not match widths",
            ));
        }
        Ok(Self::new(model_digest, input_len, output_len, vk))
    }

    /// SHA-256 of [`Self::to_bytes`].
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Hex form of [`Self::digest`].
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }
}

impl ProvingKey {
    /// The key file: magic, model digest, input and output widths (u32
    /// LE), the uncompressed arkworks proving key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let dims = (self.vk.input_len, self.vk.output_len);
        let mut out = header(PK_MAGIC, &self.model_digest, Some(dims));
        let _ = self.pk.serialize_uncompressed(&mut out);
        out
    }

    /// Parses a proving key file with full point validation.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let (model_digest, input_len, output_len) = parse_header(bytes, PK_MAGIC, "proving key")?;
        let mut rest = &bytes[48..];
        let pk = ark_groth16::ProvingKey::<Bn254>::deserialize_with_mode(
            &mut rest,
            Compress::No,
            Validate::Yes,
        )
        .map_err(|e| ser_err("proving key", e))?;
        if !rest.is_empty() {
            return Err(ser_err("proving key", "trailing bytes"));
        }
        if pk.vk.gamma_abc_g1.len() != input_len as usize + output_len as usize + 4 {
            return Err(ser_err("proving key", "input count does not match widths"));
        }
        let vk = VerifyingKey::new(model_digest, input_len, output_len, pk.vk.clone());
        Ok(ProvingKey {
            model_digest,
            pk,
            vk,
        })
    }

    /// The matching verifying key (its digest goes into every bundle).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.vk
    }
}

/// Runs the Groth16 setup for `model`'s circuit. Whoever runs this learns
/// the toxic waste (drawn from `rng` and dropped on return) and could forge
/// proofs for this model: it must be the model registrant / network
/// operator, never a provider (see docs/ZK.md). Use a CSPRNG (`OsRng`);
/// seeded RNGs are for tests only.
pub fn setup<R: RngCore + CryptoRng>(
    model: &QuantModel,
    rng: &mut R,
) -> Result<(ProvingKey, VerifyingKey), ZkError> {
    model.validate()?;
    let circuit = InferenceCircuit::blank(model);
    let (pk, vk) = Groth16::<Bn254>::circuit_specific_setup(circuit, rng).map_err(ZkError::from)?;
    debug_assert_eq!(vk.gamma_abc_g1.len(), num_public_inputs(model) + 1);
    let digest = model.digest();
    let vk = VerifyingKey::new(
        digest,
        model.input_len() as u32,
        model.output_len() as u32,
        vk,
    );
    let pk = ProvingKey {
        model_digest: digest,
        pk,
        vk: vk.clone(),
    };
    Ok((pk, vk))
}
