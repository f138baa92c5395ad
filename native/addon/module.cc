// Addon entry: the Device, Tensor and MappedFile classes, CUDA discovery, build facts and the
// sampling-parameter layout (sampleParamFields), the block quantizer (quantizeRows).
#include <napi.h>

#include "addon_data.h"
#include "device.h"
#include "graph.h"
#include "cuda/selftest.h"
#include "cuda/variants.h"

namespace paralon {

// selfTest() → [{ name, passed, detail }] for cuda and cuda-sim devices (the simulator's intrinsics).
Napi::Value DeviceWrap::SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceState* dev = live("selfTest");
  std::string name = dev->backend->name();
  std::vector<SelfTestResult> results;
  // Run on the JS thread after draining the stream: self-tests are a diagnostic, not a hot path.
  dev->backend->synchronize();
  if (name == "cuda-sim") {
    results = cuda_sim::run_selftests();
#if PARALON_WITH_CUDA
  } else if (name.rfind("cuda:", 0) == 0) {
    results = cuda::run_selftests();
#endif
  } else {
    throw_op_error(env, "selfTest", "self-tests exist for cuda and cuda-sim devices only");
  }
  Napi::Array out = Napi::Array::New(env, results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", results[i].name);
    o.Set("passed", results[i].passed);
    o.Set("detail", results[i].detail);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info);  // bandwidth.cc
Napi::Value SampleParamFields(Napi::Env env);                      // sample_binding.cc
Napi::Value QuantizeRows(const Napi::CallbackInfo& info);          // quantize_binding.cc

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  std::string reason;
  int n = cuda_device_count(&reason);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("count", n);
  o.Set("reason", reason);
  return o;
}

// setKernelVariants({ matmulPath, matmulTileM, matmulSplits, gemvKSlices, decodeSplits, decodeFusedMerge }): forced kernel variants
// for the variant harness (cuda/variants.h); a field that is missing or -1 means automatic.
static Napi::Value SetKernelVariants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) {
    throw Napi::TypeError::New(env, "setKernelVariants: expected an object");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  KernelVariants& v = kernel_variants();
  auto field = [&](const char* name, std::atomic<int>& slot) {
    Napi::Value x = o.Get(name);
    if (!x.IsUndefined() && !x.IsNumber()) {
      throw Napi::TypeError::New(env, std::string("setKernelVariants: ") + name + " must be a number");
    }
    slot.store(x.IsUndefined() ? KernelVariants::kAuto : x.As<Napi::Number>().Int32Value());
  };
  field("matmulPath", v.matmul_path);
  field("matmulTileM", v.matmul_tile_m);
  field("matmulSplits", v.matmul_splits);
  field("gemvKSlices", v.gemv_k_slices);
  field("decodeSplits", v.decode_splits);
  field("decodeFusedMerge", v.decode_fused_merge);
  return env.Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function tensor = TensorWrap::Define(env);
  Napi::Function device = DeviceWrap::Define(env);
  Napi::Function mapped = MappedFileWrap::Define(env);
  Napi::Function graph = GraphWrap::Define(env);
  data->graph_ctor = Napi::Persistent(graph);
  data->tensor_ctor = Napi::Persistent(tensor);
  data->device_ctor = Napi::Persistent(device);
  data->mapped_file_ctor = Napi::Persistent(mapped);
  env.SetInstanceData(data);
  exports.Set("Tensor", tensor);
  exports.Set("Device", device);
  exports.Set("MappedFile", mapped);
  exports.Set("Graph", graph);
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth));
  exports.Set("setKernelVariants", Napi::Function::New(env, SetKernelVariants));
  exports.Set("sampleParamFields", SampleParamFields(env));
  exports.Set("quantizeRows", Napi::Function::New(env, QuantizeRows));
  Napi::Object build = Napi::Object::New(env);
  build.Set("cuda", Napi::Boolean::New(env, PARALON_WITH_CUDA));
  exports.Set("build", build);
  return exports;
}

NODE_API_MODULE(paralon, Init)

}  // namespace paralon
