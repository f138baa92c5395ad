// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and the
// Gumbel noise used by sampling. Shared by the CPU backend and the CUDA kernels so that a
// (seed, offset, token) triple gives bit-identical uniforms on every backend.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PARALON_HD __host__ __device__ __forceinline__
#else
#define PARALON_HD inline
#endif

namespace paralon {

struct Philox4 {
  uint32_t v[4];
};

PARALON_HD uint32_t philox_mulhi(uint32_t a, uint32_t b, uint32_t* lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *lo = static_cast<uint32_t>(p);
  return static_cast<uint32_t>(p >> 32);
}

PARALON_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t lo0, lo1;
    uint32_t hi0 = philox_mulhi(0xD2511F53u, ctr.v[0], &lo0);
    uint32_t hi1 = philox_mulhi(0xCD9E8D57u, ctr.v[2], &lo1);
    Philox4 next = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    ctr = next;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// Uniform in the open interval (0, 1) for token `index` of the draw (seed, offset): 23 random bits
// centred in their cell, (k + 0.5) · 2⁻²³, so every value is exact in f32 and the largest is 1 − 2⁻²⁴
// (24 bits would round the top value up to exactly 1, and -log(-log(1)) is infinite).
PARALON_HD float philox_uniform(uint64_t seed, uint64_t offset, uint32_t index) {
  Philox4 ctr = {{index, static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32), 0u}};
  Philox4 r = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return (static_cast<float>(r.v[0] >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

}  // namespace paralon
