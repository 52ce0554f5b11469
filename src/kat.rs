//! Known answers (made once with the openssl CLI): a 2048-bit RSA key, a P-256 and a P-384 key,
//! and signatures over [`MSG`]. The start-up check of a verification backend uses the RS256 and
//! ES256 ones; the unit tests and `bench/crypto-wasm` (which includes this file by path) use all.

pub const MSG: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
pub const RSA_N: &str = "r-liBbZvgC04dpr7T5SwVhHe-QpqiYvViNJBBoPUDE1o3u9KV_8hpnHlEHnsxkc2Q1G4je5ipClijK6LxRydxqhFGjVK2fnKRbRWYUHBwQj4q2K3baU-ZfYJdHkVRFoHI9DL5xGIukJR6ka6abFMPLtbmiZwxzFxVsQ9G9FVtPBQmofsKk4XtkrnfziRRRNNYjPx0cap9N4b_4HJHe9OdijkqQY02g_LsZVz4pS6sPT--YkbGTTCSDqSCXq75PDyXAJ8HqHBrWR3tg3qTEpeOawx8qZY2B1UFPudUAZriz5XaVoG_puYT9bOzh0q17ZYUXQyWxmfNbGuEjAbrfw49Q";
pub const RSA_E: &str = "AQAB";
pub const SIG_RS256: &str = "CkQnk0ncn5d8n8uM8zb_N0gf55B7LDRA1JrvRCL2I0GgUPL4teDGAX2bmMBc6nRHRqAXKhURqGNzanXp_4qAvxinG8zgCFbeHzA-Z-Vrh0u5-EtL_IxiuzHcvJPu_aDqycipUJileKc8U70SD5uA2oPS6wA3b0U6UVlys0jNCWbDvdlKBuhLegflNIoJG6nZ-yjvSuV5dIq2I-BfNoAo3YnaYcI-ebGTvF7lutNej2BxLzGhh1ZfaCfpOwKFM7I5CCEpzkGPPXJMSfg_Hg_p1b4wlJcDcL1E6G8lR_R6TLHRtqoy0SRML8SVN2wxjcbhiFJ0puI-3oramyY3PIHQpw";
pub const P256_X: &str = "lB7qIBjp7OTPmnyFsU8EphIemuIT9szezjhfQzx3XKE";
pub const P256_Y: &str = "IvxZgrQab6pre9fKShqrOE6ClocB2dlo54KJQltPWZI";
pub const SIG_ES256: &str = "U9rh__BucfvCupKodChzlI7N9pXDavpyao3AIcQNoyrUx-BeW7QyLavzbWAoVVKhYSNRPf22hzgKPPpTxjEmmg";
/// PS256 by the RSA key, salt of 32 bytes (`-sigopt rsa_padding_mode:pss -sigopt
/// rsa_pss_saltlen:digest -sigopt rsa_mgf1_md:sha256`).
pub const SIG_PS256: &str = "J007mQN4KCbIywLiSm2-fHjLSN8WzKOKHPCxSdrjWUsbY1Ql9SUCO5uw8Qq91onYwOHGGKaOQZOPE5VogiUBf0jFMtgPeuFp-EcfvEmgNlEAogI21zq0DlU_N-zIaAOmHlxh2bp6RnO5N-AvMAh-t1tbm-GDws8JubAM27s2VuRkNVsXV7uqvp6iB4BQpJqp3IOgUUkjl6-dYVA2WfC3KhHplEOcsOGqa9o2XH0t1K2k6qzvo8CXUuZcifRMPxwgoBCpqGhkt7MVQ-lrFUCtSvAtd9ndyC4--Ru3Ct20bGrYCbB_9ehxkZyAyvSWNWhiJYeAB19aI7m4FalkI4PAuQ";
pub const P384_X: &str = "LstpRVPsHOw_JLeuKWCxYljDCvSmO-5tSIOTpJdZp0sIa-HQfaPi4bCfi4yaSIJ7";
pub const P384_Y: &str = "cjVisKHRkrs5jMi-S7jqfHgIKrV_YWhVzHfB48eWXt2spjS4g3rNxQUQWadIb2m7";
/// ES384 by the P-384 key (DER converted to r ‖ s).
pub const SIG_ES384: &str = "K0mKGVn9T6ljkOJbmOgt4GgfH-8V_PuHQhOv5JDfvubZoHmAjDLAbslWaLIdjCgD5s_ly1713342ImSjmGD8LiKEOMSg8evq6vat91aViyJ1rWE2uBgvnq_gkvTQ1ELZ";
