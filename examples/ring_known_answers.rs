//! ring's known answers, for checking ring as the boards build it (`scripts/test-arm`): run
//! once on the host, as the reference, and once as the armv7 binary under qemu-arm, whose ring
//! C is Thumb-2 code (scripts/lib/arm.sh `size_cflags`); the two outputs must be the same, and
//! each run verifies the signatures the other made (ECDSA and RSA-PSS signing take a random
//! nonce or salt).
//!
//! Covers what TLS and sfpair use: SHA-1/256/384/512 at lengths around block boundaries, HMAC,
//! AES-128/256-GCM and ChaCha20-Poly1305 (seal and open), Ed25519 from a fixed seed, RSA PKCS#1
//! signing with a given key, ECDSA P-256/P-384 signing and verifying, X25519, P-256 and P-384
//! agreement (each side's secret must match the other's).
//!
//! `ring_known_answers OUT [PEER_SIGNED] [RSA_PKCS8_DER]`: writes the answers to OUT and this
//! run's signatures to OUT.signed; verifies PEER_SIGNED (the other run's OUT.signed). Exits
//! non-zero (a panic) on any mismatch. Must not: read anything but its arguments, or print any
//! key.

use ring::{aead, agreement, digest, hmac, rand, signature};
use signature::KeyPair;
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut out = String::new();
    let msg: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    for (n, alg) in [
        ("sha256", &digest::SHA256),
        ("sha384", &digest::SHA384),
        ("sha512", &digest::SHA512),
        ("sha1", &digest::SHA1_FOR_LEGACY_USE_ONLY),
    ] {
        for len in [0, 1, 55, 64, 200, 3000] {
            out += &format!(
                "{n}-{len} {}\n",
                hex(digest::digest(alg, &msg[..len]).as_ref())
            );
        }
    }
    for (n, alg) in [
        ("hmac256", hmac::HMAC_SHA256),
        ("hmac384", hmac::HMAC_SHA384),
        ("hmac512", hmac::HMAC_SHA512),
    ] {
        let k = hmac::Key::new(alg, &msg[..40]);
        out += &format!("{n} {}\n", hex(hmac::sign(&k, &msg).as_ref()));
    }
    for (n, alg, kl) in [
        ("aes128gcm", &aead::AES_128_GCM, 16),
        ("aes256gcm", &aead::AES_256_GCM, 32),
        ("chacha", &aead::CHACHA20_POLY1305, 32),
    ] {
        for len in [0, 15, 16, 1000, 3000] {
            let key =
                aead::LessSafeKey::new(aead::UnboundKey::new(alg, &msg[100..100 + kl]).unwrap());
            let mut data = msg[..len].to_vec();
            key.seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key([7u8; 12]),
                aead::Aad::from(&msg[5..25]),
                &mut data,
            )
            .unwrap();
            out += &format!("{n}-{len} {}\n", hex(&data));
            let plain = key
                .open_in_place(
                    aead::Nonce::assume_unique_for_key([7u8; 12]),
                    aead::Aad::from(&msg[5..25]),
                    &mut data,
                )
                .unwrap();
            assert_eq!(plain, &msg[..len], "{n} round trip");
        }
    }
    let ed = signature::Ed25519KeyPair::from_seed_unchecked(&msg[200..232]).unwrap();
    let sig = ed.sign(&msg);
    out += &format!(
        "ed25519-pub {}\ned25519-sig {}\n",
        hex(ed.public_key().as_ref()),
        hex(sig.as_ref())
    );
    signature::UnparsedPublicKey::new(&signature::ED25519, ed.public_key().as_ref())
        .verify(&msg, sig.as_ref())
        .expect("ed25519 verify");
    let rng = rand::SystemRandom::new();
    // Key agreement: both sides must reach the same secret.
    for (n, alg) in [
        ("x25519", &agreement::X25519),
        ("ecdh-p256", &agreement::ECDH_P256),
        ("ecdh-p384", &agreement::ECDH_P384),
    ] {
        for _ in 0..5 {
            let ka = agreement::EphemeralPrivateKey::generate(alg, &rng).unwrap();
            let kb = agreement::EphemeralPrivateKey::generate(alg, &rng).unwrap();
            let pa = ka.compute_public_key().unwrap();
            let pb = kb.compute_public_key().unwrap();
            let s1 = agreement::agree_ephemeral(
                ka,
                &agreement::UnparsedPublicKey::new(alg, pb.as_ref()),
                |s| s.to_vec(),
            )
            .unwrap();
            let s2 = agreement::agree_ephemeral(
                kb,
                &agreement::UnparsedPublicKey::new(alg, pa.as_ref()),
                |s| s.to_vec(),
            )
            .unwrap();
            assert_eq!(s1, s2, "{n} agreement");
        }
    }
    // ECDSA and RSA-PSS: sign here for the other run; verify what the other run signed.
    let mut signed = String::new();
    for (n, salg, valg) in [
        (
            "p256",
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
        ),
        (
            "p384",
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
        ),
    ] {
        let doc = signature::EcdsaKeyPair::generate_pkcs8(salg, &rng).unwrap();
        let kp = signature::EcdsaKeyPair::from_pkcs8(salg, doc.as_ref(), &rng).unwrap();
        let sig = kp.sign(&rng, &msg).unwrap();
        signature::UnparsedPublicKey::new(valg, kp.public_key().as_ref())
            .verify(&msg, sig.as_ref())
            .expect("own ecdsa");
        signed += &format!(
            "{n} {} {}\n",
            hex(kp.public_key().as_ref()),
            hex(sig.as_ref())
        );
    }
    if let Some(der) = a.get(3) {
        let key = signature::RsaKeyPair::from_pkcs8(&std::fs::read(der).unwrap()).unwrap();
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(&signature::RSA_PKCS1_SHA256, &rng, &msg, &mut sig)
            .unwrap();
        out += &format!("rsa-pkcs1 {}\n", hex(&sig));
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            key.public().as_ref(),
        )
        .verify(&msg, &sig)
        .expect("rsa verify");
        let mut pss = vec![0; key.public().modulus_len()];
        key.sign(&signature::RSA_PSS_SHA256, &rng, &msg, &mut pss)
            .unwrap();
        signed += &format!("rsa-pss {} {}\n", hex(key.public().as_ref()), hex(&pss));
    }
    if let Some(peer) = a.get(2).filter(|p| !p.is_empty()) {
        for line in std::fs::read_to_string(peer).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let alg: &dyn signature::VerificationAlgorithm = match f[0] {
                "p256" => &signature::ECDSA_P256_SHA256_ASN1,
                "p384" => &signature::ECDSA_P384_SHA384_ASN1,
                "rsa-pss" => &signature::RSA_PSS_2048_8192_SHA256,
                _ => continue,
            };
            signature::UnparsedPublicKey::new(alg, unhex(f[1]))
                .verify(&msg, &unhex(f[2]))
                .expect(f[0]);
            out += &format!("verified-peer {}\n", f[0]);
        }
    }
    std::fs::write(&a[1], out).unwrap();
    std::fs::write(format!("{}.signed", a[1]), signed).unwrap();
    println!("ok");
}
