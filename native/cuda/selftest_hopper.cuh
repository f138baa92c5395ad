// Self-tests of the Hopper wrappers (hopper.cuh), included by selftest.cu inside its anonymous
// namespace (it uses Buffer, Checker, launch_status and, on the simulator, Sanitizers/expect_fault).
// Expectations are written from the PTX ISA's tables, never from hopper_layout.h's helpers:
//   - wgmma D fragment (figure "WGMMA .m64nNk16 register fragment layout for accumulator matrix D"):
//     thread t of the warpgroup, register i: row 16·(t/32) + (t%32)/4 + 8·((i%4)/2), column
//     8·(i/4) + 2·(t%4) + i%2;
//   - K-major canonical layouts: no swizzle = 8 × 16-byte core matrices placed by LBO (along K) and
//     SBO (along M/N); swizzled = 8-row groups (SBO apart) of rows of the swizzle width T (128, 64 or
//     32 bytes), the 16-byte chunks of row r permuted by XOR with r % 8, (r % 8) / 2 or (r % 8) / 4
//     (the pattern repeats every 1024, 512 or 256 bytes, so the tile starts at such a boundary);
//   - TMA: box rows packed in shared memory (the swizzle as above), out-of-bounds elements zero;
//     mbarrier phases alternate parity 0, 1, ….
// On a GPU they run only on compute capability 9 with an sm_90a build.

constexpr int kProbeNone = 0, kProbeSw128 = 1, kProbeOverwrite = 2, kProbeNoFence = 3, kProbeSw64 = 4, kProbeSw32 = 5,
              kProbeDiverge = 6;

// Byte offset of A/B element (r, k) in the test's shared layouts, written from the ISA's description.
// The 128B and 64B cases put the k16 slice at bytes 32..63 of each row (the descriptor's start + 32,
// as a kernel stepping through a wider k-tile does); 32B rows hold exactly the 16 k values.
__host__ __device__ inline uint32_t probe_offset(int mode, int r, int k) {
  const int g = r / 8, q = r % 8;
  switch (mode) {
    case kProbeSw128: {
      const int byte = 32 + 2 * k;
      return g * 1024 + q * 128 + (((byte / 16) ^ q) * 16) + byte % 16;
    }
    case kProbeSw64: {
      const int byte = 32 + 2 * k;
      return g * 512 + q * 64 + (((byte / 16) ^ (q / 2)) * 16) + byte % 16;
    }
    case kProbeSw32: {
      const int byte = 2 * k;
      return g * 256 + q * 32 + (((byte / 16) ^ (q / 4)) * 16) + byte % 16;
    }
    default: return g * 256 + (k / 8) * 128 + q * 16 + (k % 8) * 2;  // no swizzle: LBO 128, SBO 256
  }
}

// The descriptor of a tile stored by probe_offset(mode, ...) at shared address `tile`.
__device__ inline uint64_t probe_descriptor(int mode, uint32_t tile) {
  switch (mode) {
    case kProbeSw128: return wgmma_descriptor(tile + 32, 16, 1024, Swizzle::k128B);
    case kProbeSw64: return wgmma_descriptor(tile + 32, 16, 512, Swizzle::k64B);
    case kProbeSw32: return wgmma_descriptor(tile, 16, 256, Swizzle::k32B);
    default: return wgmma_descriptor(tile, 128, 256, Swizzle::kNone);
  }
}

// One warpgroup: A [64 × 16], B [128 × 16] (B[n][k]) stored by probe_offset, D preset from c, one wgmma.
template <typename T16>
__global__ void wgmma_probe_kernel(int mode, const uint16_t* a, const uint16_t* b, const float* c, float* out) {
  PARALON_DYNAMIC_SHARED(unsigned char, raw);
  unsigned char* base = raw + (1024 - shared_address(raw) % 1024) % 1024;
  unsigned char* sa = base;
  unsigned char* sb = base + 8192;
  const int t = threadIdx.x;
  const int layout = mode == kProbeOverwrite || mode == kProbeNoFence || mode == kProbeDiverge ? kProbeNone : mode;
  for (int e = t; e < 64 * 16; e += 128) *reinterpret_cast<uint16_t*>(sa + probe_offset(layout, e / 16, e % 16)) = a[e];
  for (int e = t; e < 128 * 16; e += 128) *reinterpret_cast<uint16_t*>(sb + probe_offset(layout, e / 16, e % 16)) = b[e];
  fence_proxy_async();
  __syncthreads();
  float d[64];
  for (int i = 0; i < 64; ++i) d[i] = c[t * 64 + i];
  uint64_t da = probe_descriptor(layout, shared_address(sa));
  const uint64_t db = probe_descriptor(layout, shared_address(sb));
  if (mode == kProbeDiverge && t >= 64) da += 2;  // a bug: half the warpgroup names another A (start + 32 B)
  if (mode != kProbeNoFence) wgmma_fence();
  wgmma_m64n128k16<T16>(d, da, db, 1);
  wgmma_commit();
  if (mode == kProbeOverwrite && t == 0) sa[0] ^= 0x40;  // a bug: the operand changes while in flight
  wgmma_wait<0>();
  for (int i = 0; i < 64; ++i) out[t * 64 + i] = d[i];
}

template <typename T16>
SelfTestResult test_wgmma() {
  constexpr bool kBf16 = std::is_same<T16, __nv_bfloat16>::value;
  Checker check(kBf16 ? "wgmma m64n128k16 bf16: descriptors (no swizzle; 128B, 64B, 32B swizzles; k offset), D fragment"
                      : "wgmma m64n128k16 f16: descriptors (no swizzle; 128B, 64B, 32B swizzles; k offset), D fragment");
  // Small integers: every product and sum is exact in f32, so the comparison is exact.
  auto to16 = [](float f) -> uint16_t {
    if (kBf16) {
      uint32_t u;
      std::memcpy(&u, &f, 4);
      return static_cast<uint16_t>(u >> 16);
    }
    const __half h = __float2half_rn(f);
    __half_raw r = h;
    return r.x;
  };
  std::vector<uint16_t> a(64 * 16), b(128 * 16);
  std::vector<float> af(64 * 16), bf(128 * 16), c(128 * 64);
  for (int r = 0; r < 64; ++r)
    for (int k = 0; k < 16; ++k) af[r * 16 + k] = static_cast<float>((r * 3 + k * 5) % 7 - 3);
  for (int n = 0; n < 128; ++n)
    for (int k = 0; k < 16; ++k) bf[n * 16 + k] = static_cast<float>((n * 5 + k * 3 + n / 8) % 9 - 4);
  for (size_t i = 0; i < af.size(); ++i) a[i] = to16(af[i]);
  for (size_t i = 0; i < bf.size(); ++i) b[i] = to16(bf[i]);
  for (int i = 0; i < 128 * 64; ++i) c[i] = static_cast<float>(i % 64) * 0.5f - static_cast<float>(i / 64);
  Buffer<uint16_t> da(a), db(b);
  Buffer<float> dc(c);
  for (int mode : {kProbeNone, kProbeSw128, kProbeSw64, kProbeSw32}) {
    const char* const layout_name = mode == kProbeNone ? "no swizzle" : mode == kProbeSw128 ? "128B swizzle" : mode == kProbeSw64 ? "64B swizzle" : "32B swizzle";
    Buffer<float> out(128 * 64);
    PARALON_CUDA_CHECK("selftest", cudaFuncSetAttribute(wgmma_probe_kernel<T16>,
                                                        cudaFuncAttributeMaxDynamicSharedMemorySize, 32 * 1024));
    PARALON_LAUNCH((wgmma_probe_kernel<T16>), 1, 128, 32 * 1024, nullptr, mode, da.get(), db.get(), dc.get(), out.get());
    check.launched(launch_status());
    const std::vector<float> got = out.read();
    for (int t = 0; t < 128; ++t) {
      for (int i = 0; i < 64; ++i) {
        const int row = 16 * (t / 32) + (t % 32) / 4 + 8 * ((i % 4) / 2);
        const int col = 8 * (i / 4) + 2 * (t % 4) + i % 2;
        float want = c[t * 64 + i];
        for (int k = 0; k < 16; ++k) want += af[row * 16 + k] * bf[col * 16 + k];
        check.expect(got[t * 64 + i] == want, std::string(layout_name) +
                                                  ": thread " + std::to_string(t) + " d[" + std::to_string(i) +
                                                  "] = " + std::to_string(got[t * 64 + i]) + ", expected D[" +
                                                  std::to_string(row) + "][" + std::to_string(col) + "] = " +
                                                  std::to_string(want));
      }
    }
  }
#if PARALON_CUDA_SIM_BUILD
  {
    Buffer<float> out(128 * 64);
    expect_fault(check, "operand overwritten before wait_group",
                 [&] {
                   PARALON_LAUNCH((wgmma_probe_kernel<T16>), 1, 128, 32 * 1024, nullptr, kProbeOverwrite, da.get(),
                                  db.get(), dc.get(), out.get());
                 },
                 cudaErrorLaunchFailure, "changed between the wgmma and the wgmma.wait_group");
    expect_fault(check, "wgmma without wgmma.fence",
                 [&] {
                   PARALON_LAUNCH((wgmma_probe_kernel<T16>), 1, 128, 32 * 1024, nullptr, kProbeNoFence, da.get(),
                                  db.get(), dc.get(), out.get());
                 },
                 cudaErrorLaunchFailure, "no wgmma.fence");
    expect_fault(check, "threads of a warpgroup issuing different wgmmas",
                 [&] {
                   PARALON_LAUNCH((wgmma_probe_kernel<T16>), 1, 128, 32 * 1024, nullptr, kProbeDiverge, da.get(),
                                  db.get(), dc.get(), out.get());
                 },
                 cudaErrorLaunchFailure, "wgmma is .aligned");
  }
#endif
  return check.result();
}

constexpr int kTmaRows = 40, kTmaCols = 72, kTmaPitch = 80;  // elements; rows of 160 bytes

// Phase 0: a 64 × 16 box with the 128B swizzle at (40, 30) (columns past 71 and rows past 39 are
// outside). Phase 1 (parity 1 of the same barrier): an 8 × 8 box, no swizzle, at (-3, -2). Phase 2
// (parity 0 again): a 32 × 8 box with the 64B swizzle at (50, 35).
// skip_wait = true (simulator-only test): reads the box after a __syncthreads but without any thread
// waiting on the barrier (the data may not have landed on hardware).
__global__ void tma_probe_kernel(const __grid_constant__ TensorMap swizzled, const __grid_constant__ TensorMap plain,
                                 const __grid_constant__ TensorMap swizzled64, uint16_t* out, int skip_wait) {
  PARALON_DYNAMIC_SHARED(unsigned char, raw);
  __shared__ uint64_t bar;
  unsigned char* box0 = raw + (1024 - shared_address(raw) % 1024) % 1024;
  unsigned char* box1 = box0 + 2048;
  unsigned char* box2 = box0 + 3072;  // 1024-byte aligned like box0
  const int t = threadIdx.x;
  if (t == 0) {
    mbarrier_init(&bar, 1);
    mbarrier_init_fence();
  }
  __syncthreads();
  if (t == 0) {
    mbarrier_arrive_expect_tx(&bar, 64 * 16 * 2);
    tma_load_2d(box0, &swizzled, &bar, 40, 30);
  }
  if (skip_wait) {
    __syncthreads();
  } else {
    mbarrier_wait(&bar, 0);
  }
  for (int e = t; e < 64 * 16; e += blockDim.x) out[e] = reinterpret_cast<const uint16_t*>(box0)[e];
  __syncthreads();
  if (t == 0) {
    tma_load_2d(box1, &plain, &bar, -3, -2);  // complete_tx before expect_tx: the count goes negative first
    mbarrier_arrive_expect_tx(&bar, 8 * 8 * 2);
  }
  mbarrier_wait(&bar, 1);
  for (int e = t; e < 64; e += blockDim.x) out[1024 + e] = reinterpret_cast<const uint16_t*>(box1)[e];
  __syncthreads();
  if (t == 0) {
    mbarrier_arrive_expect_tx(&bar, 32 * 8 * 2);
    tma_load_2d(box2, &swizzled64, &bar, 50, 35);
  }
  mbarrier_wait(&bar, 0);
  for (int e = t; e < 256; e += blockDim.x) out[1088 + e] = reinterpret_cast<const uint16_t*>(box2)[e];
}

SelfTestResult test_tma() {
  Checker check("TMA 2-D tensor copies: 128B and 64B swizzles, no swizzle, out-of-bounds zero fill, mbarrier parity");
  std::vector<uint16_t> src(kTmaRows * kTmaPitch);
  for (int r = 0; r < kTmaRows; ++r)
    for (int k = 0; k < kTmaPitch; ++k) src[r * kTmaPitch + k] = static_cast<uint16_t>(k < kTmaCols ? r * 100 + k + 1 : 0xBEEF);
  Buffer<uint16_t> d_src(src), out(1024 + 64 + 256);
  TensorMap swizzled, plain, swizzled64;
  std::string err = make_tensor_map_2d(&swizzled, d_src.get(), kTmaCols, kTmaRows, kTmaPitch * 2, 64, 16, Swizzle::k128B);
  if (err.empty()) err = make_tensor_map_2d(&plain, d_src.get(), kTmaCols, kTmaRows, kTmaPitch * 2, 8, 8, Swizzle::kNone);
  if (err.empty()) err = make_tensor_map_2d(&swizzled64, d_src.get(), kTmaCols, kTmaRows, kTmaPitch * 2, 32, 8, Swizzle::k64B);
  check.expect(err.empty(), "tensor maps: " + err);
  if (!err.empty()) return check.result();
  auto value = [&](int r, int k) -> uint16_t {
    return r >= 0 && r < kTmaRows && k >= 0 && k < kTmaCols ? src[r * kTmaPitch + k] : 0;
  };
  PARALON_CUDA_CHECK("selftest", cudaFuncSetAttribute(tma_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 5120));
  PARALON_LAUNCH(tma_probe_kernel, 1, 96, 5120, nullptr, swizzled, plain, swizzled64, out.get(), 0);
  check.launched(launch_status());
  const std::vector<uint16_t> got = out.read();
  for (int r = 0; r < 16; ++r) {
    for (int k = 0; k < 64; ++k) {
      const int byte = r * 128 + (((2 * k / 16) ^ (r % 8)) * 16) + (2 * k) % 16;
      check.expect_eq(got[byte / 2], value(30 + r, 40 + k),
                      "swizzled box element (" + std::to_string(r) + ", " + std::to_string(k) + ")");
    }
  }
  for (int r = 0; r < 8; ++r)
    for (int k = 0; k < 8; ++k)
      check.expect_eq(got[1024 + r * 8 + k], value(r - 2, k - 3),
                      "plain box element (" + std::to_string(r) + ", " + std::to_string(k) + ")");
  for (int r = 0; r < 8; ++r) {
    for (int k = 0; k < 32; ++k) {
      const int byte = r * 64 + (((2 * k / 16) ^ (r / 2)) * 16) + (2 * k) % 16;
      check.expect_eq(got[1088 + byte / 2], value(35 + r, 50 + k),
                      "64B-swizzled box element (" + std::to_string(r) + ", " + std::to_string(k) + ")");
    }
  }
#if PARALON_CUDA_SIM_BUILD
  {
    Sanitizers on(true, false, false);
    expect_fault(check, "reading a TMA box before its mbarrier phase completed",
                 [&] { PARALON_LAUNCH(tma_probe_kernel, 1, 96, 5120, nullptr, swizzled, plain, swizzled64, out.get(), 1); },
                 cudaErrorLaunchFailure, "before this thread observed the mbarrier phase");
  }
#endif
  return check.result();
}

// The runtime's once-per-process check of the wgmma GEMM (matmul_wgmma.h), run here directly: it needs
// only a stream and the device's shared-memory opt-in, so a minimal launch context serves.
class CheckContext final : public LaunchContext {
 public:
  CheckContext() {
#if PARALON_CUDA_SIM_BUILD
    max_smem_optin = 99 * 1024;  // the simulated device's sharedMemPerBlockOptin
#else
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess) {
      max_smem_optin = static_cast<size_t>(optin);
    }
#endif
  }
  const int32_t* stage_i32(const int32_t*, size_t) override { throw OpError("selftest: no metadata staging"); }
  const void* stage_bytes(const void*, size_t) override { throw OpError("selftest: no metadata staging"); }
  const void* constant_bytes(const void*, size_t) override { throw OpError("selftest: no constants"); }
  int32_t* zeroed_counters(size_t) override { throw OpError("selftest: no counters"); }
  void* scratch(size_t) override { throw OpError("selftest: no scratch"); }
  void* host_results(size_t) override { throw OpError("selftest: no results buffer"); }
  cudaEvent_t results_ready() override { throw OpError("selftest: no results event"); }
  bool capturing() const override { return false; }
};

SelfTestResult test_wgmma_first_contact() {
  Checker check("wgmma GEMM first-contact check (200 x 264 x 136 + residual vs float64), as the runtime runs it");
  CheckContext ctx;
  const std::string why = wgmma_first_contact_check(ctx);
  check.expect(why.empty(), why);
  return check.result();
}

// Whether this device runs the Hopper tests: always on the simulator; on a GPU compute capability 9
// with an sm_90a build.
bool hopper_tests_apply() {
#if PARALON_CUDA_SIM_BUILD
  return true;
#elif defined(PARALON_HAS_SM90A)
  int dev = 0, major = 0;
  return cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major == 9;
#else
  return false;
#endif
}
