//! An experiment, not plugin code: which limb width is faster for Montgomery products in
//! wasm? wasm has `i64.mul` but no 64×64→128 multiply, so 64-bit limbs need their 128-bit
//! products assembled (or a libcall) while 32-bit limbs get theirs from one `i64.mul`.
//!
//! One generic implementation (operand-scanning Montgomery product, no special squaring, e =
//! 65537 as 16 squarings and a multiply) instantiated twice, so only the width differs.

macro_rules! montgomery {
    ($module:ident, $limb:ty, $wide:ty) => {
        pub mod $module {
            type Limb = $limb;
            type Wide = $wide;
            const BITS: u32 = Limb::BITS;

            pub struct Key {
                n: Vec<Limb>,
                n0inv: Limb,
                rr: Vec<Limb>,
                len_bytes: usize,
            }

            fn from_be(bytes: &[u8], len: usize) -> Vec<Limb> {
                let size = (BITS / 8) as usize;
                let mut out = vec![0; len];
                for (limb, chunk) in out.iter_mut().zip(bytes.rchunks(size)) {
                    *limb = chunk.iter().fold(0, |acc, b| (acc << 8) | Limb::from(*b));
                }
                out
            }

            fn less(a: &[Limb], b: &[Limb]) -> bool {
                for (x, y) in a.iter().rev().zip(b.iter().rev()) {
                    if x != y {
                        return x < y;
                    }
                }
                false
            }

            fn sub_in_place(x: &mut [Limb], n: &[Limb]) {
                let mut borrow = false;
                for (xi, ni) in x.iter_mut().zip(n) {
                    let (d, b1) = xi.overflowing_sub(*ni);
                    let (d, b2) = d.overflowing_sub(Limb::from(borrow));
                    *xi = d;
                    borrow = b1 || b2;
                }
            }

            impl Key {
                /// `n` odd, big-endian.
                pub fn new(n_be: &[u8]) -> Key {
                    let size = (BITS / 8) as usize;
                    let len = n_be.len().div_ceil(size);
                    let n = from_be(n_be, len);
                    let mut inv: Limb = n[0];
                    for _ in 0..6 {
                        inv = inv.wrapping_mul((2 as Limb).wrapping_sub(n[0].wrapping_mul(inv)));
                    }
                    // R² mod n by doubling 1 (the simple way: this is not the code under test).
                    let mut x = vec![0 as Limb; len];
                    x[0] = 1;
                    for _ in 0..2 * BITS as usize * len {
                        let mut carry = 0;
                        for limb in x.iter_mut() {
                            let v = *limb;
                            *limb = (v << 1) | carry;
                            carry = v >> (BITS - 1);
                        }
                        if carry != 0 || !less(&x, &n) {
                            sub_in_place(&mut x, &n);
                        }
                    }
                    Key { n, n0inv: inv.wrapping_neg(), rr: x, len_bytes: n_be.len() }
                }

                fn mul(&self, a: &[Limb], b: &[Limb], out: &mut [Limb], t0: &mut Vec<Limb>, t1: &mut Vec<Limb>) {
                    t0.fill(0);
                    let (mut cur, mut next) = (t0.as_mut_slice(), t1.as_mut_slice());
                    let mut top: Wide = 0;
                    for &bi in b {
                        let bi = Wide::from(bi);
                        let v = Wide::from(cur[0]) + Wide::from(a[0]) * bi;
                        let mut c1 = v >> BITS;
                        let m = Wide::from((v as Limb).wrapping_mul(self.n0inv));
                        let w = Wide::from(v as Limb) + m * Wide::from(self.n[0]);
                        let mut c2 = w >> BITS;
                        for (((dst, &t), &aj), &nj) in
                            next.iter_mut().zip(cur.iter().skip(1)).zip(a.iter().skip(1)).zip(self.n.iter().skip(1))
                        {
                            let v = Wide::from(t) + Wide::from(aj) * bi + c1;
                            c1 = v >> BITS;
                            let w = Wide::from(v as Limb) + m * Wide::from(nj) + c2;
                            c2 = w >> BITS;
                            *dst = w as Limb;
                        }
                        let x = top + c1 + c2;
                        *next.last_mut().unwrap() = x as Limb;
                        top = x >> BITS;
                        std::mem::swap(&mut cur, &mut next);
                    }
                    out.copy_from_slice(cur);
                    if top != 0 || !less(out, &self.n) {
                        sub_in_place(out, &self.n);
                    }
                }

                /// s^65537 mod n, big-endian, modulus length.
                pub fn pow65537(&self, s_be: &[u8]) -> Vec<u8> {
                    let len = self.n.len();
                    let s = from_be(s_be, len);
                    let (mut t0, mut t1) = (vec![0; len], vec![0; len]);
                    let mut x = vec![0; len];
                    let mut y = vec![0; len];
                    self.mul(&s, &self.rr, &mut x, &mut t0, &mut t1);
                    for _ in 0..16 {
                        self.mul(&x, &x, &mut y, &mut t0, &mut t1);
                        std::mem::swap(&mut x, &mut y);
                    }
                    self.mul(&x, &s, &mut y, &mut t0, &mut t1);
                    let bytes: Vec<u8> = y.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
                    bytes[bytes.len() - self.len_bytes..].to_vec()
                }
            }
        }
    };
}

montgomery!(limb32, u32, u64);
montgomery!(limb64, u64, u128);
