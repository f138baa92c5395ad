// Which sanitizers run: an override set by code, else PARALON_SIM_SANITIZE / PARALON_SIM_SCHEDULE_SEED.
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "sim/sanitizers.h"

namespace paralon {
namespace sim {
namespace {

std::mutex config_mutex;
bool overridden = false;
SanitizerConfig override_config;

}  // namespace

bool parse_sanitizer_list(const char* text, SanitizerConfig* config, const char** error) {
  *error = nullptr;
  for (const char* p = text; p != nullptr && *p != '\0';) {
    const char* end = std::strchr(p, ',');
    const size_t n = end != nullptr ? size_t(end - p) : std::strlen(p);
    auto is = [&](const char* name) { return n == std::strlen(name) && std::strncmp(p, name, n) == 0; };
    if (is("all")) {
      config->racecheck = config->memcheck = config->initcheck = true;
    } else if (is("racecheck")) {
      config->racecheck = true;
    } else if (is("memcheck")) {
      config->memcheck = true;
    } else if (is("initcheck")) {
      config->initcheck = true;
    } else if (n != 0) {
      *error = "PARALON_SIM_SANITIZE: unknown tool (expected racecheck, memcheck, initcheck or all)";
      return false;
    }
    p = end != nullptr ? end + 1 : nullptr;
  }
  return true;
}

SanitizerConfig sanitizer_config(const char** error) {
  if (error != nullptr) *error = nullptr;
  {
    std::lock_guard<std::mutex> lock(config_mutex);
    if (overridden) return override_config;
  }
  SanitizerConfig c;
  const char* parse_error = nullptr;
  parse_sanitizer_list(std::getenv("PARALON_SIM_SANITIZE"), &c, &parse_error);
  if (error != nullptr) *error = parse_error;
  if (const char* seed = std::getenv("PARALON_SIM_SCHEDULE_SEED")) c.schedule_seed = std::strtoull(seed, nullptr, 0);
  return c;
}

void set_sanitizer_config(const SanitizerConfig& config) {
  std::lock_guard<std::mutex> lock(config_mutex);
  overridden = true;
  override_config = config;
}

void clear_sanitizer_config() {
  std::lock_guard<std::mutex> lock(config_mutex);
  overridden = false;
}

}  // namespace sim
}  // namespace paralon
