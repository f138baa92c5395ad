// GGUF checkpoints (llama.cpp's model files): the container, its metadata, Qwen3's keys and tensor
// names, and the tokenizer it carries.
export { GGML_TYPES, gguf, type GgmlTypeName, type GgufValue, type GgufScalar, type GgufArray } from './types.js';
export { parseGgufHeader, bufferSource, type ByteSource, type GgufHeader, type GgufTensorInfo } from './reader.js';
export { writeGguf, type GgufTensorToWrite } from './writer.js';
export { GgufMetadata } from './metadata.js';
export { GgufCheckpoint, readGgufHeader, findGgufFile, splitFiles, ggufModelId, type GgufTensorEntry } from './checkpoint.js';
export { tokenizerFromGguf, tokenizerToGguf, tokenizerMetadataSource, TokenType, type GgufTokenizer, type HfTokenizerJson, type HfTokenizerConfig } from './tokenizer-metadata.js';
export {
  exportQwen3Gguf,
  qwen3ConfigFromGguf,
  qwen3Metadata,
  ggufTensorName,
  hfTensorName,
  QWEN3_ARCHITECTURE,
  type GgufExport,
  type GgufExportOptions,
  type GgufWeightDType,
} from './qwen3.js';
