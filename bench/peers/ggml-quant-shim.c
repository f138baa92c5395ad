// Golden vectors from llama.cpp's own quantizers: dlopens node-llama-cpp's prebuilt libggml-base.so and
// runs quantize_row_<fmt>_ref and dequantize_row_<fmt> on the f32 values of IN (a whole number of 256-value
// rows), writing OUT_DIR/<fmt>.q (the blocks) and OUT_DIR/<fmt>.f32 (their dequantized values).
// Built and run by bench/quant-golden.ts; a peer tool, never part of the runtime.
//   cc -O1 -o shim ggml-quant-shim.c -ldl && ./shim LIBGGML_BASE IN OUT_DIR
// Second form (bench/peers/ggml-quantizer.ts: llama.cpp's quantizer for the bench's GGUF files):
//   ./shim LIBGGML_BASE --quantize FMT IN OUT   writes only FMT's blocks of IN to OUT
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*quantize_fn)(const float*, void*, int64_t);
typedef void (*dequantize_fn)(const void*, float*, int64_t);

static const struct { const char* name; const char* quantize; const char* dequantize; int block_elems, block_bytes; } formats[] = {
    {"q8_0", "quantize_row_q8_0_ref", "dequantize_row_q8_0", 32, 34},
    {"q4_k", "quantize_row_q4_K_ref", "dequantize_row_q4_K", 256, 144},
    {"q5_k", "quantize_row_q5_K_ref", "dequantize_row_q5_K", 256, 176},
    {"q6_k", "quantize_row_q6_K_ref", "dequantize_row_q6_K", 256, 210},
};

static void write_file(const char* dir, const char* name, const char* ext, const void* data, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, bytes, f) != bytes) { perror(path); exit(1); }
  fclose(f);
}

static int quantize_one(void* lib, const char* fmt, const char* in, const char* out) {
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; ++i) {
    if (strcmp(formats[i].name, fmt) != 0) continue;
    quantize_fn qf = (quantize_fn)dlsym(lib, formats[i].quantize);
    if (!qf) { fprintf(stderr, "missing %s\n", formats[i].quantize); return 1; }
    FILE* f = fopen(in, "rb");
    if (!f) { perror(in); return 1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    int64_t n = size / 4;
    if (size % 4 != 0 || n % formats[i].block_elems != 0) { fprintf(stderr, "%s: not whole %s blocks\n", in, fmt); return 1; }
    float* x = malloc(size ? size : 1);
    size_t bytes = (size_t)(n / formats[i].block_elems * formats[i].block_bytes);
    uint8_t* q = malloc(bytes ? bytes : 1);
    if (fread(x, 1, size, f) != (size_t)size) { perror(in); return 1; }
    fclose(f);
    qf(x, q, n);
    FILE* o = fopen(out, "wb");
    if (!o || fwrite(q, 1, bytes, o) != bytes) { perror(out); return 1; }
    fclose(o);
    return 0;
  }
  fprintf(stderr, "unknown format %s\n", fmt);
  return 2;
}

int main(int argc, char** argv) {
  if (argc == 6 && strcmp(argv[2], "--quantize") == 0) {
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    return quantize_one(lib, argv[3], argv[4], argv[5]);
  }
  if (argc != 4) { fprintf(stderr, "usage: %s LIBGGML_BASE IN OUT_DIR | LIBGGML_BASE --quantize FMT IN OUT\n", argv[0]); return 2; }
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  FILE* f = fopen(argv[2], "rb");
  if (!f) { perror(argv[2]); return 1; }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  int64_t n = size / 4;
  if (size % (4 * 256) != 0) { fprintf(stderr, "%s: not whole rows of 256 f32 values\n", argv[2]); return 1; }
  float* x = malloc(size);
  float* y = malloc(size);
  uint8_t* q = malloc(n / 32 * 34 + n);
  if (fread(x, 1, size, f) != (size_t)size) { perror(argv[2]); return 1; }
  fclose(f);
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; ++i) {
    quantize_fn qf = (quantize_fn)dlsym(lib, formats[i].quantize);
    dequantize_fn df = (dequantize_fn)dlsym(lib, formats[i].dequantize);
    if (!qf || !df) { fprintf(stderr, "%s: missing %s or %s\n", argv[1], formats[i].quantize, formats[i].dequantize); return 1; }
    qf(x, q, n);
    df(q, y, n);
    write_file(argv[3], formats[i].name, "q", q, (size_t)(n / formats[i].block_elems * formats[i].block_bytes));
    write_file(argv[3], formats[i].name, "f32", y, (size_t)size);
  }
  return 0;
}
