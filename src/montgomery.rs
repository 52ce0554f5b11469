//! Montgomery modular arithmetic for a prepared odd modulus, written once for RSA's public
//! operation ([`crate::rsa`]) and the P-256/P-384 field and scalar arithmetic ([`crate::ecdsa`]).
//!
//! Values are little-endian 32-bit limbs, as many as the modulus has, fully reduced (< n).
//! The limbs are 32-bit because wasm has a 64-bit multiply but no 64×64→128 one: 64-bit limbs
//! measured twice as slow in V8 (`bench/crypto.sh`). A dedicated squaring (half the limb
//! products) measured slower than the plain product there, whose cost is in the loop
//! iterations rather than the multiplies, so there is none.
//!
//! Only public values are handled, so nothing here is constant-time. No input may panic:
//! slices are walked with iterators and `get`; a length mismatch gives a wrong value (callers
//! keep every slice exactly [`Modulus::limbs`] long), never a panic.

/// An odd modulus n with its Montgomery constants, R = 2^(32·limbs).
#[derive(Clone)]
pub struct Modulus {
    /// n, little-endian limbs, the top one non-zero.
    n: Vec<u32>,
    /// -n⁻¹ mod 2³², the per-limb reduction factor.
    n0inv: u32,
    /// R² mod n: one product with it brings a value into Montgomery form.
    rr: Vec<u32>,
    /// R mod n, the Montgomery form of 1.
    one: Vec<u32>,
    bits: usize,
}

impl Modulus {
    /// The modulus from big-endian bytes (leading zeros ignored); `None` if it is even or zero.
    pub fn new(be: &[u8]) -> Option<Modulus> {
        let bits = be_bits(be);
        if be.last().map_or(true, |b| b & 1 == 0) || bits == 0 {
            return None;
        }
        let limbs = bits.div_ceil(32);
        let n = be_to_limbs(be, limbs);
        let n0inv = neg_inverse(n.first().copied().unwrap_or(1));
        let mut m = Modulus { n, n0inv, rr: Vec::new(), one: Vec::new(), bits };
        m.rr = m.r_squared();
        let mut one = vec![0u32; limbs];
        if let Some(low) = one.first_mut() {
            *low = 1;
        }
        m.one = m.to_mont(&one);
        Some(m)
    }

    /// Number of limbs of every value.
    pub fn limbs(&self) -> usize {
        self.n.len()
    }

    /// Significant bits of n.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// n itself, little-endian limbs.
    pub fn value(&self) -> &[u32] {
        &self.n
    }

    /// R mod n, the Montgomery form of 1.
    pub fn one(&self) -> &[u32] {
        &self.one
    }

    /// out = a·b·R⁻¹ mod n for a, b < n (all `limbs()` long), by finely integrated operand
    /// scanning: each pass adds a·b_i and the multiple of n that clears the lowest limb, and
    /// writes the sum one limb lower (the division by 2³²) into the other scratch buffer. With
    /// one operand in Montgomery form and the other plain, the result is plain.
    ///
    /// Not inlined, and its running sum in [`Work`] rather than in `out`: both measured ~10%
    /// faster in V8 (`bench/crypto.sh`) for identical inner-loop wasm.
    #[inline(never)]
    pub fn mul(&self, a: &[u32], b: &[u32], out: &mut [u32], work: &mut Work) {
        let (Some((&a0, a_rest)), Some((&n0, n_rest))) = (a.split_first(), self.n.split_first()) else { return };
        let Work { t0, t1 } = work;
        t0.fill(0);
        let (mut cur, mut next) = (t0.as_mut_slice(), t1.as_mut_slice());
        // The limbs above `len`: the running value stays below 2n + n·2³², so < 2^(32·len+34).
        let mut top: u64 = 0;
        for &bi in b {
            let bi = u64::from(bi);
            let (cur0, cur_rest) = cur.split_first().map_or((0, &[][..]), |(c, rest)| (u64::from(*c), rest));
            // Each step is at most (2³²-1) + (2³²-1)² + (2³²-1) = 2⁶⁴-1: no overflow.
            let v = cur0.wrapping_add(u64::from(a0).wrapping_mul(bi));
            let mut c1 = v >> 32;
            let m = u64::from((v as u32).wrapping_mul(self.n0inv));
            let w = u64::from(v as u32).wrapping_add(m.wrapping_mul(u64::from(n0)));
            let mut c2 = w >> 32;
            // Plain slices in the zip (no `skip`): it then compiles to one indexed loop.
            for (((dst, &t), &aj), &nj) in next.iter_mut().zip(cur_rest).zip(a_rest).zip(n_rest) {
                let v = u64::from(t).wrapping_add(u64::from(aj).wrapping_mul(bi)).wrapping_add(c1);
                c1 = v >> 32;
                let w = u64::from(v as u32).wrapping_add(m.wrapping_mul(u64::from(nj))).wrapping_add(c2);
                c2 = w >> 32;
                *dst = w as u32;
            }
            let x = top.wrapping_add(c1).wrapping_add(c2);
            if let Some(last) = next.last_mut() {
                *last = x as u32;
            }
            top = x >> 32;
            std::mem::swap(&mut cur, &mut next);
        }
        // The sum is below 2n: at most one subtraction.
        copy(cur, out);
        if top != 0 || !less_than(out, &self.n) {
            sub_in_place(out, &self.n);
        }
    }

    /// a·R mod n, the Montgomery form of a < n.
    pub fn to_mont(&self, a: &[u32]) -> Vec<u32> {
        let mut out = vec![0u32; self.n.len()];
        self.mul(a, &self.rr, &mut out, &mut Work::new(self.n.len()));
        out
    }

    /// a·R⁻¹ mod n: the plain value of a Montgomery form (the tests' check of `to_mont`).
    #[cfg(test)]
    pub fn from_mont(&self, a: &[u32]) -> Vec<u32> {
        let mut plain_one = vec![0u32; self.n.len()];
        if let Some(low) = plain_one.first_mut() {
            *low = 1;
        }
        let mut out = vec![0u32; self.n.len()];
        self.mul(a, &plain_one, &mut out, &mut Work::new(self.n.len()));
        out
    }

    /// base^exp mod n, Montgomery form in and out, by left-to-right square-and-multiply; `exp`
    /// is little-endian limbs of any length (zero gives 1). The top bit of exp is consumed by
    /// starting from the base, so e.g. exp = 2^16 costs 16 squarings and nothing else.
    pub fn pow(&self, base: &[u32], exp: &[u32]) -> Vec<u32> {
        let len = self.n.len();
        let mut acc = self.one.clone();
        let (mut tmp, mut work) = (vec![0u32; len], Work::new(len));
        let mut started = false;
        for &limb in exp.iter().rev() {
            for bit in (0..32u32).rev() {
                if started {
                    self.mul(&acc, &acc, &mut tmp, &mut work);
                    std::mem::swap(&mut acc, &mut tmp);
                }
                if (limb >> bit) & 1 == 1 {
                    if started {
                        self.mul(&acc, base, &mut tmp, &mut work);
                        std::mem::swap(&mut acc, &mut tmp);
                    } else {
                        copy(base, &mut acc);
                        started = true;
                    }
                }
            }
        }
        acc
    }

    /// out = a + b mod n, for a, b < n (either form: addition commutes with it). Not inlined:
    /// the point formulas call it dozens of times per curve, and inlined copies made most of
    /// the ECDSA code in the wasm.
    #[inline(never)]
    pub fn add(&self, a: &[u32], b: &[u32], out: &mut [u32]) {
        let mut carry = 0u64;
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            let v = u64::from(x).wrapping_add(u64::from(y)).wrapping_add(carry);
            *o = v as u32;
            carry = v >> 32;
        }
        // a + b < 2n: the lost carry is cancelled by the borrow out of the subtraction.
        if carry != 0 || !less_than(out, &self.n) {
            sub_in_place(out, &self.n);
        }
    }

    /// out = a − b mod n, for a, b < n. Not inlined, as [`Modulus::add`].
    #[inline(never)]
    pub fn sub(&self, a: &[u32], b: &[u32], out: &mut [u32]) {
        let mut borrow = 0u64;
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            let v = u64::from(x).wrapping_sub(u64::from(y)).wrapping_sub(borrow);
            *o = v as u32;
            borrow = (v >> 32) & 1;
        }
        if borrow != 0 {
            // a − b + 2^(32·len) + n: the carry out of this addition cancels the borrow.
            let mut carry = 0u64;
            for (o, &ni) in out.iter_mut().zip(&self.n) {
                let v = u64::from(*o).wrapping_add(u64::from(ni)).wrapping_add(carry);
                *o = v as u32;
                carry = v >> 32;
            }
        }
    }

    /// R² mod n. R mod n comes from 2^(bits-1) (below n, which is odd) doubled up to
    /// 2^(32·limbs); L more doublings make 2^L·R, the Montgomery form of 2^L, and five
    /// Montgomery squarings raise it to 2^(32·L)·R = R². About L + 32 doublings instead of 32·L.
    fn r_squared(&self) -> Vec<u32> {
        let len = self.n.len();
        let mut x = vec![0u32; len];
        let top = self.bits.saturating_sub(1);
        if let Some(limb) = x.get_mut(top / 32) {
            *limb = 1u32 << (top % 32);
        }
        let to_r = len.saturating_mul(32).saturating_sub(top);
        for _ in 0..to_r.saturating_add(len) {
            double_mod(&mut x, &self.n);
        }
        let (mut tmp, mut work) = (vec![0u32; len], Work::new(len));
        for _ in 0..5 {
            self.mul(&x, &x, &mut tmp, &mut work);
            std::mem::swap(&mut x, &mut tmp);
        }
        x
    }
}

/// Scratch space for Montgomery products (the running sum and the buffer it is written to
/// one limb lower), allocated once per exponentiation or signature.
pub struct Work {
    t0: Vec<u32>,
    t1: Vec<u32>,
}

impl Work {
    /// Scratch for a modulus of `limbs` limbs.
    pub fn new(limbs: usize) -> Work {
        Work { t0: vec![0; limbs], t1: vec![0; limbs] }
    }
}

/// Significant bits of a big-endian integer.
pub fn be_bits(be: &[u8]) -> usize {
    let zeros = be.iter().take_while(|b| **b == 0).count();
    let Some((first, rest)) = be.get(zeros..).and_then(<[u8]>::split_first) else { return 0 };
    rest.len().saturating_mul(8).saturating_add(8usize.saturating_sub(first.leading_zeros() as usize))
}

/// Big-endian bytes to `len` little-endian limbs (bytes beyond 4·len are ignored: callers
/// pass at most that many).
pub fn be_to_limbs(be: &[u8], len: usize) -> Vec<u32> {
    let mut limbs = vec![0u32; len];
    be_into_limbs(be, &mut limbs);
    limbs
}

/// Big-endian bytes into the little-endian limbs `out` (zero-filled above the bytes).
pub fn be_into_limbs(be: &[u8], out: &mut [u32]) {
    out.fill(0);
    for (limb, chunk) in out.iter_mut().zip(be.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    }
}

/// Little-endian limbs to `len` big-endian bytes; the value must fit (the limbs beyond are zero).
pub fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let excess = out.len().saturating_sub(len);
    out.drain(..excess);
    out
}

/// a < b, both of the same number of limbs.
pub fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

pub fn is_zero(a: &[u32]) -> bool {
    a.iter().all(|l| *l == 0)
}

/// x −= n, modulo 2^(32·len) (the caller knows the true result fits).
pub fn sub_in_place(x: &mut [u32], n: &[u32]) {
    let mut borrow = 0u64;
    for (xi, &ni) in x.iter_mut().zip(n) {
        let v = u64::from(*xi).wrapping_sub(u64::from(ni)).wrapping_sub(borrow);
        *xi = v as u32;
        borrow = (v >> 32) & 1;
    }
}

fn copy(from: &[u32], to: &mut [u32]) {
    for (t, f) in to.iter_mut().zip(from) {
        *t = *f;
    }
}

/// x = 2x mod n, for x < n.
fn double_mod(x: &mut [u32], n: &[u32]) {
    let mut carry = 0u32;
    for limb in x.iter_mut() {
        let v = *limb;
        *limb = (v << 1) | carry;
        carry = v >> 31;
    }
    if carry != 0 || !less_than(x, n) {
        // 2x − n < n: the borrow out of the top limb cancels the lost carry.
        sub_in_place(x, n);
    }
}

/// -x⁻¹ mod 2³² for odd x: Newton's iteration y ← y(2 − xy) doubles the correct low bits,
/// and y = x is already right modulo 8 (3 → 6 → 12 → 24 → 48 bits).
fn neg_inverse(x: u32) -> u32 {
    let mut y = x;
    for _ in 0..4 {
        y = y.wrapping_mul(2u32.wrapping_sub(x.wrapping_mul(y)));
    }
    y.wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rsa::BigUint;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
        (0..len).map(|_| rng.gen()).collect()
    }

    /// A random odd modulus of exactly `len` bytes (top byte non-zero).
    fn random_modulus(rng: &mut StdRng, len: usize) -> (Modulus, BigUint) {
        let mut n = random_bytes(rng, len);
        n[0] |= 1 << rng.gen_range(0..8);
        *n.last_mut().unwrap() |= 1;
        (Modulus::new(&n).unwrap(), BigUint::from_bytes_be(&n))
    }

    fn big(limbs: &[u32]) -> BigUint {
        BigUint::from_bytes_be(&limbs_to_be(limbs, limbs.len() * 4))
    }

    fn limbs(m: &Modulus, x: &BigUint) -> Vec<u32> {
        be_to_limbs(&x.to_bytes_be(), m.limbs())
    }

    /// Byte lengths from one limb to 8192 bits, with lengths that leave the top limb partial,
    /// and the P-256/P-384 sizes.
    const LENGTHS: [usize; 13] = [1, 3, 4, 5, 8, 31, 32, 48, 64, 129, 255, 256, 1024];

    /// 0, 1, n − 1 and random values below n.
    fn values(rng: &mut StdRng, n: &BigUint, len: usize) -> Vec<BigUint> {
        let mut v = vec![BigUint::from(0u8), BigUint::from(1u8), n - BigUint::from(1u8)];
        v.extend((0..5).map(|_| BigUint::from_bytes_be(&random_bytes(rng, len)) % n));
        v
    }

    #[test]
    fn neg_inverse_is_the_montgomery_factor() {
        let mut rng = StdRng::seed_from_u64(1);
        for x in [1u32, 3, 0xffff_ffff, 0x8000_0001].into_iter().chain((0..1000).map(|_| rng.gen::<u32>() | 1)) {
            assert_eq!(x.wrapping_mul(neg_inverse(x)), u32::MAX, "{x:#x}");
        }
    }

    #[test]
    fn even_or_zero_moduli_are_refused() {
        assert!(Modulus::new(&[]).is_none());
        assert!(Modulus::new(&[0, 0]).is_none());
        assert!(Modulus::new(&[0x03, 0x04]).is_none());
        let m = Modulus::new(&[0, 0, 0x01, 0x00, 0x03]).unwrap();
        assert_eq!((m.limbs(), m.bits(), m.value()), (1, 17, &[0x10003u32][..]));
        assert_eq!(Modulus::new(&[1]).unwrap().bits(), 1);
    }

    #[test]
    fn constants_match_bignum() {
        let mut rng = StdRng::seed_from_u64(2);
        for len in LENGTHS {
            for _ in 0..4 {
                let (m, n) = random_modulus(&mut rng, len);
                let r = BigUint::from(1u8) << (32 * m.limbs());
                assert_eq!(big(&m.rr), (&r * &r) % &n, "{len} bytes");
                assert_eq!(big(m.one()), &r % &n, "{len} bytes");
            }
        }
    }

    #[test]
    fn products_and_conversions_match_bignum() {
        let mut rng = StdRng::seed_from_u64(3);
        for len in LENGTHS {
            let (m, n) = random_modulus(&mut rng, len);
            let r = BigUint::from(1u8) << (32 * m.limbs());
            let values = values(&mut rng, &n, len);
            for a in &values {
                let al = limbs(&m, a);
                assert_eq!(big(&m.to_mont(&al)), (a * &r) % &n, "{len} bytes");
                assert_eq!(big(&m.from_mont(&m.to_mont(&al))), a.clone(), "{len} bytes");
                for b in &values {
                    let bl = limbs(&m, b);
                    let mut out = vec![0u32; m.limbs()];
                    m.mul(&al, &bl, &mut out, &mut Work::new(m.limbs()));
                    // out·R ≡ a·b (mod n), and out is fully reduced.
                    assert!(big(&out) < n);
                    assert_eq!((big(&out) * &r) % &n, (a * b) % &n, "{len} bytes");
                    m.add(&al, &bl, &mut out);
                    assert_eq!(big(&out), (a + b) % &n, "{len} bytes");
                    m.sub(&al, &bl, &mut out);
                    assert_eq!(big(&out), (a + &n - b) % &n, "{len} bytes");
                }
            }
        }
    }

    #[test]
    fn powers_match_bignum() {
        let mut rng = StdRng::seed_from_u64(4);
        for len in LENGTHS.into_iter().filter(|l| *l <= 256) {
            let (m, n) = random_modulus(&mut rng, len);
            let exps = [
                BigUint::from(0u8),
                BigUint::from(1u8),
                BigUint::from(2u8),
                BigUint::from(65536u32),
                &n - BigUint::from(2u8),
                BigUint::from_bytes_be(&random_bytes(&mut rng, len.min(48))),
            ];
            for base in values(&mut rng, &n, len) {
                for e in &exps {
                    let el = be_to_limbs(&e.to_bytes_be(), e.to_bytes_be().len().div_ceil(4));
                    let got = m.from_mont(&m.pow(&m.to_mont(&limbs(&m, &base)), &el));
                    assert_eq!(big(&got), base.modpow(e, &n), "{len} bytes, exp {e}");
                }
            }
        }
    }

    #[test]
    fn byte_conversions() {
        assert_eq!(be_bits(&[]), 0);
        assert_eq!(be_bits(&[0, 0]), 0);
        assert_eq!(be_bits(&[0, 1]), 1);
        assert_eq!(be_bits(&[0x80, 0]), 16);
        assert_eq!(be_to_limbs(&[1, 2, 3, 4, 5], 2), [0x02030405, 0x01]);
        assert_eq!(be_to_limbs(&[1, 2, 3, 4, 5], 1), [0x02030405]);
        assert_eq!(limbs_to_be(&[0x02030405, 0x01], 5), [1, 2, 3, 4, 5]);
        assert_eq!(limbs_to_be(&[0x02030405, 0x01], 8), [0, 0, 0, 1, 2, 3, 4, 5]);
        assert!(less_than(&[5, 1], &[4, 2]) && !less_than(&[4, 2], &[4, 2]) && !less_than(&[0, 3], &[9, 2]));
        assert!(is_zero(&[0, 0]) && !is_zero(&[0, 1]));
    }
}
