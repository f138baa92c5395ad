// Results of the warp collectives, computed by the lane that completes the group, per the PTX ISA:
// shfl.sync (lane/clamp/segment-mask arithmetic), vote.sync, redux.sync, ldmatrix and mma.sync
// m16n8k16 (fragment layouts in common.cuh). A value read from a lane outside the group is undefined
// on hardware; here it is the poison kPoisonWord (NaN as f32, a huge index as an int), so its use shows up.
#include <cstdio>
#include <cstring>
#include <string>

#include "sim/internal.h"

namespace paralon {
namespace sim {
namespace {

constexpr uint32_t kUndefined = kPoisonWord;

bool in(uint32_t set, int lane) { return lane >= 0 && lane < 32 && ((set >> lane) & 1u); }

// shfl.sync: b = lane or offset, c = ((32 - width) << 8) | clamp.
void shuffle(LaneSlot* const lanes[32], uint32_t group) {
  for (int lane = 0; lane < 32; ++lane) {
    if (!in(group, lane)) continue;
    LaneSlot& s = *lanes[lane];
    const int b = s.arg & 31, clamp = s.clamp & 31, seg = (s.clamp >> 8) & 31;
    const int max_lane = (lane & seg) | (clamp & ~seg), min_lane = lane & seg;
    int j = lane;
    bool valid = false;
    switch (s.variant) {
      case kShflUp: j = lane - b; valid = j >= max_lane; break;
      case kShflDown: j = lane + b; valid = j <= max_lane; break;
      case kShflXor: j = lane ^ b; valid = j <= max_lane; break;
      default: j = min_lane | (b & ~seg); valid = j <= max_lane; break;
    }
    if (!valid) j = lane;
    if (in(group, j)) {
      s.out[0] = lanes[j]->in[0];
      s.out[1] = lanes[j]->in[1];
    } else {
      s.out[0] = s.out[1] = kUndefined;
    }
  }
}

uint32_t reduce(LaneSlot* const lanes[32], uint32_t group, uint8_t kind) {
  bool first = true;
  uint32_t acc = 0;
  for (int lane = 0; lane < 32; ++lane) {
    if (!in(group, lane)) continue;
    const uint32_t v = lanes[lane]->in[0];
    if (first) { acc = v; first = false; continue; }
    switch (kind) {
      case kRedAddU: case kRedAddS: acc += v; break;
      case kRedMinU: acc = v < acc ? v : acc; break;
      case kRedMaxU: acc = v > acc ? v : acc; break;
      case kRedMinS: acc = int32_t(v) < int32_t(acc) ? v : acc; break;
      case kRedMaxS: acc = int32_t(v) > int32_t(acc) ? v : acc; break;
      case kRedAnd: acc &= v; break;
      case kRedOr: acc |= v; break;
      default: acc ^= v; break;
    }
  }
  return acc;
}

void ldmatrix(LaneSlot* const lanes[32]) {
  const int count = lanes[0]->variant & 0xF;
  const bool trans = lanes[0]->variant & kLdmatrixTrans;
  const unsigned char* rows[4][8];
  for (int m = 0; m < count; ++m) {
    for (int r = 0; r < 8; ++r) {
      const void* p = lanes[8 * m + r]->ptr;
      char what[160];
      if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        std::snprintf(what, sizeof what, "ldmatrix: row address %p of lane %d is not 16-byte aligned", p, 8 * m + r);
        device_fault(cudaErrorMisalignedAddress, what);
      }
      if (!is_shared_range(p, 16)) {
        std::snprintf(what, sizeof what, "ldmatrix: row address %p of lane %d is not in shared memory", p, 8 * m + r);
        device_fault(cudaErrorIllegalAddress, what);
      }
      rows[m][r] = static_cast<const unsigned char*>(p);
    }
  }
  auto element = [&](int m, int row, int col) {
    uint16_t v;
    std::memcpy(&v, rows[m][row] + 2 * col, 2);
    return uint32_t(v);
  };
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int m = 0; m < count; ++m) {
      lanes[lane]->out[m] = trans ? element(m, 2 * t, g) | element(m, 2 * t + 1, g) << 16
                                  : element(m, g, 2 * t) | element(m, g, 2 * t + 1) << 16;
    }
  }
}

float half_bits_to_float(uint32_t bits, uint8_t type) {
  if (type == kMmaBf16) {
    uint32_t f = bits << 16;
    float r;
    std::memcpy(&r, &f, 4);
    return r;
  }
  __half_raw raw;
  raw.x = static_cast<unsigned short>(bits);
  return __half2float(__half(raw));
}

// D = A·B + C with exact products and a double accumulator, rounded once to f32.
void mma(LaneSlot* const lanes[32]) {
  const uint8_t type = lanes[0]->variant;
  float a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const LaneSlot& s = *lanes[lane];
    const int g = lane / 4, t = lane % 4;
    for (int h = 0; h < 2; ++h) {
      a[g][2 * t + h] = half_bits_to_float(s.in[0] >> (16 * h) & 0xFFFF, type);
      a[g + 8][2 * t + h] = half_bits_to_float(s.in[1] >> (16 * h) & 0xFFFF, type);
      a[g][2 * t + 8 + h] = half_bits_to_float(s.in[2] >> (16 * h) & 0xFFFF, type);
      a[g + 8][2 * t + 8 + h] = half_bits_to_float(s.in[3] >> (16 * h) & 0xFFFF, type);
      b[2 * t + h][g] = half_bits_to_float(s.in[4] >> (16 * h) & 0xFFFF, type);
      b[2 * t + 8 + h][g] = half_bits_to_float(s.in[5] >> (16 * h) & 0xFFFF, type);
    }
    std::memcpy(&c[g][2 * t], &s.in[6], 2 * sizeof(float));
    std::memcpy(&c[g + 8][2 * t], &s.in[8], 2 * sizeof(float));
  }
  float d[16][8];
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double acc = c[i][j];
      for (int k = 0; k < 16; ++k) acc += double(a[i][k]) * double(b[k][j]);
      d[i][j] = static_cast<float>(acc);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    std::memcpy(&lanes[lane]->out[0], &d[g][2 * t], 2 * sizeof(float));
    std::memcpy(&lanes[lane]->out[2], &d[g + 8][2 * t], 2 * sizeof(float));
  }
}

}  // namespace

void compute_warp_op(LaneSlot* const lanes[32], uint32_t group) {
  const LaneSlot& first = *lanes[__builtin_ctz(group)];
  switch (first.op) {
    case WarpOp::kShuffle: shuffle(lanes, group); return;
    case WarpOp::kLdmatrix: ldmatrix(lanes); return;
    case WarpOp::kMma: mma(lanes); return;
    default: break;
  }
  uint32_t result = 0;
  switch (first.op) {
    case WarpOp::kBallot:
      for (int lane = 0; lane < 32; ++lane) result |= in(group, lane) && lanes[lane]->in[0] ? 1u << lane : 0u;
      break;
    case WarpOp::kAny:
      for (int lane = 0; lane < 32; ++lane) result |= in(group, lane) && lanes[lane]->in[0];
      break;
    case WarpOp::kAll:
      result = 1;
      for (int lane = 0; lane < 32; ++lane) result &= !in(group, lane) || lanes[lane]->in[0];
      break;
    case WarpOp::kReduce: result = reduce(lanes, group, first.variant); break;
    case WarpOp::kActiveMask: result = group; break;
    default: break;  // __syncwarp: nothing to compute
  }
  for (int lane = 0; lane < 32; ++lane) {
    if (in(group, lane)) lanes[lane]->out[0] = result;
  }
}

std::string describe_warp_op(const LaneSlot& s) {
  static const char* const shuffles[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
  static const char* const reduces[] = {"__reduce_add_sync(unsigned)", "__reduce_add_sync(int)",
                                        "__reduce_min_sync(unsigned)", "__reduce_min_sync(int)",
                                        "__reduce_max_sync(unsigned)", "__reduce_max_sync(int)",
                                        "__reduce_and_sync", "__reduce_or_sync", "__reduce_xor_sync"};
  std::string name;
  switch (s.op) {
    case WarpOp::kShuffle: name = shuffles[s.variant & 3]; break;
    case WarpOp::kBallot: name = "__ballot_sync"; break;
    case WarpOp::kAny: name = "__any_sync"; break;
    case WarpOp::kAll: name = "__all_sync"; break;
    case WarpOp::kSyncWarp: name = "__syncwarp"; break;
    case WarpOp::kActiveMask: return "__activemask()";
    case WarpOp::kReduce: name = reduces[s.variant % 9]; break;
    case WarpOp::kLdmatrix:
      return std::string("ldmatrix_x") + std::to_string(s.variant & 0xF) + (s.variant & kLdmatrixTrans ? "_trans" : "");
    case WarpOp::kMma: return s.variant == kMmaBf16 ? "mma_bf16_16816" : "mma_f16_16816";
  }
  char mask[16];
  std::snprintf(mask, sizeof mask, "0x%08x", s.mask);
  return name + "(mask=" + mask + ")";
}

}  // namespace sim
}  // namespace paralon
