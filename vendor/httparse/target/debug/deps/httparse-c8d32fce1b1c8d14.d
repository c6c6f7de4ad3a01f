/work/main/vendor/httparse/target/debug/deps/httparse-c8d32fce1b1c8d14.d: src/lib.rs src/iter.rs src/macros.rs src/simd/mod.rs src/simd/swar.rs src/simd/sse42.rs src/simd/avx2.rs src/simd/runtime.rs src/strict.rs

/work/main/vendor/httparse/target/debug/deps/httparse-c8d32fce1b1c8d14: src/lib.rs src/iter.rs src/macros.rs src/simd/mod.rs src/simd/swar.rs src/simd/sse42.rs src/simd/avx2.rs src/simd/runtime.rs src/strict.rs

src/lib.rs:
src/iter.rs:
src/macros.rs:
src/simd/mod.rs:
src/simd/swar.rs:
src/simd/sse42.rs:
src/simd/avx2.rs:
src/simd/runtime.rs:
src/strict.rs:
