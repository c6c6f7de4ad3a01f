/work/main/vendor/httparse/target/debug/deps/httparse-39d5e6842d8e98d3.d: src/lib.rs src/iter.rs src/macros.rs src/simd/mod.rs src/simd/swar.rs src/simd/sse42.rs src/simd/avx2.rs src/simd/runtime.rs src/strict.rs

/work/main/vendor/httparse/target/debug/deps/libhttparse-39d5e6842d8e98d3.rlib: src/lib.rs src/iter.rs src/macros.rs src/simd/mod.rs src/simd/swar.rs src/simd/sse42.rs src/simd/avx2.rs src/simd/runtime.rs src/strict.rs

/work/main/vendor/httparse/target/debug/deps/libhttparse-39d5e6842d8e98d3.rmeta: src/lib.rs src/iter.rs src/macros.rs src/simd/mod.rs src/simd/swar.rs src/simd/sse42.rs src/simd/avx2.rs src/simd/runtime.rs src/strict.rs

src/lib.rs:
src/iter.rs:
src/macros.rs:
src/simd/mod.rs:
src/simd/swar.rs:
src/simd/sse42.rs:
src/simd/avx2.rs:
src/simd/runtime.rs:
src/strict.rs:
