// GGUF checkpoints (llama.cpp's model files): the container, its metadata, the tokenizer it carries,
// opening one as a model of a registered architecture, and the export of an HF checkpoint to GGUF.
export { GGML_TYPES, gguf, type GgmlTypeName, type GgufValue, type GgufScalar, type GgufArray } from './types.js';
export { parseGgufHeader, bufferSource, type ByteSource, type GgufHeader, type GgufTensorInfo } from './reader.js';
export { writeGguf, type GgufTensorToWrite } from './writer.js';
export { GgufMetadata } from './metadata.js';
export { GgufCheckpoint, readGgufHeader, findGgufFile, splitFiles, ggufModelId, defaultModelId, type GgufTensorEntry } from './checkpoint.js';
export { ggufTensorName, hfTensorName } from './tensor-names.js';
export { tokenizerFromGguf, tokenizerToGguf, tokenizerMetadataSource, TokenType, type GgufTokenizer, type HfTokenizerJson, type HfTokenizerConfig } from './tokenizer-metadata.js';
export { qwen3ConfigFromGguf, qwen3ToGguf, QWEN3_GGUF_ARCHITECTURE } from './qwen3-config.js';
export { qwen3MoeConfigFromGguf, qwen3MoeToGguf, QWEN3MOE_GGUF_ARCHITECTURE } from './qwen3moe-config.js';
export { openGgufModel, GgufWeights, type GgufModel } from './load.js';
export { GGUF_FILE_TYPES, tensorType, useMoreBits, type GgufFileType } from './quant-recipe.js';
export { exportQwen3Gguf, type GgufExport, type GgufExportOptions, type GgufWeightDType } from './export.js';
