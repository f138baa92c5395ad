// Per-environment addon data: the constructors the bindings need to create and recognise objects.
#pragma once

#include <napi.h>

namespace paralon {

struct AddonData {
  Napi::FunctionReference tensor_ctor;
  Napi::FunctionReference device_ctor;
  Napi::FunctionReference mapped_file_ctor;
  Napi::FunctionReference graph_ctor;
};

}  // namespace paralon
