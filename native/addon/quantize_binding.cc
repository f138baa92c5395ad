// quantizeRows(dtype, values, out?) → out: ggml's reference block quantizers (native/cpu/quantize.h) for
// `paralon quantize`. dtype: 'q8_0' | 'q4_k' | 'q5_k' | 'q6_k'; values: a Float32Array of whole blocks;
// out: a Uint8Array of exactly the blocks' bytes (allocated when left out). Runs on the calling thread
// plus worker threads and returns when done.
#include <napi.h>

#include <string>

#include "cpu/quantize.h"

namespace paralon {

Napi::Value QuantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || info.Length() > 3 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "quantizeRows: expected (dtype: string, values: Float32Array, out?: Uint8Array)");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::QuantFormat format;
  if (!cpu::quant_format_from_name(name, &format)) {
    throw Napi::TypeError::New(env, "quantizeRows: unknown dtype '" + name + "' (expected q8_0, q4_k, q5_k or q6_k)");
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, "quantizeRows " + name + ": values must be a Float32Array");
  }
  Napi::Float32Array values = info[1].As<Napi::Float32Array>();
  const cpu::QuantBlockShape shape = cpu::quant_block_shape(format);
  const int64_t length = static_cast<int64_t>(values.ElementLength());
  if (length % shape.elements != 0) {
    throw Napi::RangeError::New(env, "quantize " + name + ": " + std::to_string(length) +
                                         " values are not whole blocks of " + std::to_string(shape.elements));
  }
  const int64_t num_blocks = length / shape.elements;
  const int64_t bytes = num_blocks * shape.bytes;
  Napi::Uint8Array out;
  if (info.Length() == 3 && !info[2].IsUndefined()) {
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "quantizeRows " + name + ": out must be a Uint8Array");
    }
    out = info[2].As<Napi::Uint8Array>();
    if (static_cast<int64_t>(out.ElementLength()) != bytes) {
      throw Napi::RangeError::New(env, "quantizeRows " + name + ": out has " + std::to_string(out.ElementLength()) +
                                           " bytes, " + std::to_string(num_blocks) + " blocks need " +
                                           std::to_string(bytes));
    }
  } else {
    out = Napi::Uint8Array::New(env, static_cast<size_t>(bytes));
  }
  cpu::quantize_blocks(format, values.Data(), num_blocks, out.Data(), 0);
  return out;
}

}  // namespace paralon
