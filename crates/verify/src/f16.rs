//! IEEE 754 binary16 conversion, written out here (a dozen lines) so the
//! tolerant fingerprint's wire format does not depend on a third-party crate's
//! rounding choices: round-to-nearest-even, overflow to infinity, subnormals
//! kept. Only the verifier and provider need to agree, and both use this.

/// f32 → binary16 bits, round to nearest, ties to even.
pub(crate) fn f32_to_f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x007f_ffff;
    if exp == 0xff {
        let nan = if man != 0 { 0x0200 } else { 0 };
        return sign | 0x7c00 | nan;
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rem = m & ((1u32 << shift) - 1);
        let mut r = m >> shift;
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1; // a carry into the exponent is the correct rounding (up to inf)
    }
    sign | r as u16
}

/// binary16 bits → f32 (exact).
pub(crate) fn f16_bits_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x03ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            let v = m as f32 * (1.0 / (1u32 << 24) as f32);
            return if negative { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Distance between adjacent binary16 values around `x` (the larger one at a
/// binade edge); the largest rounding error of [`f32_to_f16_bits`] is half of it.
pub(crate) fn f16_ulp(x: f64) -> f64 {
    let a = x.abs();
    if a.is_nan() || a < 6.103_515_625e-5 {
        return 2f64.powi(-24); // subnormal range (and NaN)
    }
    let e = a.log2().floor() as i32;
    2f64.powi(e.min(15) - 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        for (x, h) in [
            (1.0f32, 0x3c00u16),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00),
            (0.1, 0x2e66),
            (2f32.powi(-24), 0x0001),
            (2f32.powi(-26), 0x0000),
            (-0.0, 0x8000),
            (f32::NEG_INFINITY, 0xfc00),
        ] {
            assert_eq!(f32_to_f16_bits(x), h, "{x}");
        }
        assert!(f16_bits_to_f32(f32_to_f16_bits(f32::NAN)).is_nan());
        assert_eq!(f16_bits_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn ulp_matches_spacing() {
        assert_eq!(f16_ulp(1.0), 2f64.powi(-10));
        assert_eq!(f16_ulp(-3.9), 2f64.powi(-9));
        assert_eq!(f16_ulp(0.0), 2f64.powi(-24));
    }

    proptest! {
        #[test]
        fn every_f16_round_trips(h in any::<u16>()) {
            let x = f16_bits_to_f32(h);
            prop_assume!(!x.is_nan());
            prop_assert_eq!(f32_to_f16_bits(x), h);
        }

        #[test]
        fn rounding_error_is_at_most_half_an_ulp(x in -60000.0f32..60000.0) {
            let back = f16_bits_to_f32(f32_to_f16_bits(x)) as f64;
            prop_assert!((back - x as f64).abs() <= f16_ulp(x as f64) / 2.0 + 1e-12);
        }
    }
}
